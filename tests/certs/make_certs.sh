#!/bin/sh
# Makes the test PKI into $1 (and touches the stamp file $2, if given) (fresh each build, so no committed key expires):
#   ca.pem/ca.key                 the trusted test CA
#   server.pem/server.key         leaf for "localhost" and 127.0.0.1, signed by ca
#   server_chain.pem              server.pem followed by ca.pem
#   client.pem/client.key         client-auth leaf, signed by ca
#   wrong_name.pem/.key           leaf for "wrong.example", signed by ca
#   other_ca.pem/.key             a CA nobody trusts
#   untrusted.pem/.key            leaf for "localhost" signed by other_ca
#   garbage.pem                   not PEM at all
#   empty.pem                     an empty file
# The certificate zoo (tests/conformance/certificate_test.cpp). Unless said
# otherwise a leaf is signed by ca, names DNS:localhost and has EKU serverAuth
# and clientAuth, so that the same file can be presented by either side:
#   expired.pem/.key              expired yesterday (valid from 30 days ago)
#   not_yet_valid.pem/.key        valid from tomorrow
#   wildcard.pem/.key             DNS:*.example.test only
#   wildcard_localhost.pem/.key   DNS:*.localhost only (a wildcard right above a single label)
#   partial_wildcard.pem/.key     DNS:a*.example.test only (a wildcard that is not a whole label)
#   inner_wildcard.pem/.key       DNS:a.*.example.test only (a wildcard that is not the leftmost label)
#   mixed_case.pem/.key           DNS:MiXeD.Example.TEST only
#   ip_only.pem/.key              IP:127.0.0.1 and IP:::1, no DNS name
#   ip_as_dns.pem/.key            DNS:127.0.0.1 (an address written as a DNS name), no IP entry
#   cn_only.pem/.key              CN=localhost and no subjectAltName at all
#   cn_ip_only.pem/.key           CN=127.0.0.1 and no subjectAltName at all
#   cn_and_ip.pem/.key            CN=localhost and IP:127.0.0.1, no DNS name
#   self_signed.pem/.key          self-signed, CA:FALSE (an end entity that signs itself)
#   not_a_ca.pem/.key             CA:FALSE (keyUsage keyCertSign, though), signed by ca; signs the next
#   not_a_ca_leaf.pem/.key        signed by not_a_ca
#   not_a_ca_chain.pem            not_a_ca_leaf.pem followed by not_a_ca.pem
#   intermediate.pem/.key         an intermediate CA (CA:TRUE, pathlen 0) signed by ca
#   intermediate_leaf.pem/.key    signed by intermediate
#   intermediate_chain.pem        intermediate_leaf.pem followed by intermediate.pem
#   unordered_chain.pem           intermediate_leaf.pem, ca.pem, other_ca.pem, intermediate.pem:
#                                 out of order, with a certificate of no use in it
#   eku_server_only.pem/.key      EKU serverAuth only
#   eku_client_only.pem/.key      EKU clientAuth only
#   eku_both.pem/.key             EKU serverAuth and clientAuth
#   eku_none.pem/.key             no EKU extension
#   eku_any.pem/.key              EKU anyExtendedKeyUsage only
#   untrusted_client.pem/.key     signed by other_ca, EKU clientAuth only
#   ku_key_encipherment.pem/.key  keyUsage keyEncipherment only (no digitalSignature)
#   rsa1024.pem/.key              an RSA-1024 leaf signed by ca
#   rsa1024_ca_chain.pem          an EC leaf (rsa1024_ca_leaf.key) signed by rsa1024_ca, an RSA-1024
#                                 intermediate CA signed by ca, followed by that CA
#   nul_san.pem/.key              subjectAltName dNSName "localhost\0evil"
#   {server,client,any}_eku_ca.pem/.key
#                                 intermediate CAs signed by ca whose extendedKeyUsage is serverAuth,
#                                 clientAuth or anyExtendedKeyUsage only
#   {server,client,any}_eku_ca_chain.pem (+ _leaf.key)
#                                 a leaf (EKU serverAuth and clientAuth) signed by that CA, followed by the CA
#   leaf_bundle.pem               server.pem, client.pem and other_ca.pem in one file: as a ca_file
#                                 its only trust anchor is other_ca, which signed neither leaf
#   encrypted.key                 server.key as PKCS#8 encrypted with AES-256 (password "unitls")
#   encrypted_traditional.key     server.key in the traditional encrypted PEM form (Proc-Type: 4,ENCRYPTED)
#   encrypted_sha1.key            server.key as PKCS#8 PBES2, PBKDF2 hmacWithSHA1, AES-128-CBC ("unitls")
#   encrypted_des3.key            server.key as PKCS#8 PBES2, PBKDF2 hmacWithSHA1, DES-EDE3-CBC ("unitls")
#   encrypted_pkcs12.key          server.key as PKCS#8 pbeWithSHAAnd3-KeyTripleDES-CBC ("unitls")
#   encrypted_scrypt.key          server.key as PKCS#8 PBES2 with scrypt, AES-256-CBC ("unitls")
#   encrypted_camellia.key        server.key as PKCS#8 PBES2, PBKDF2 hmacWithSHA256, Camellia-256-CBC ("unitls")
#   encrypted_utf8.key            server.key as PKCS#8 (OpenSSL's default) with a UTF-8 password ("p\303\244ss")
#   encrypted_pkcs12_utf8.key     server.key as PKCS#8 pbeWithSHAAnd3-KeyTripleDES-CBC, the same password
#   server.der, server_key.der, ca.der, client.der
#                                 server.pem, server.key and ca.pem in DER (not PEM)
# Keys are ECDSA P-256: quick to make, supported by every backend.
set -eu
out=$1
stamp=${2:-}
case $stamp in ""|/*) ;; *) stamp=$(pwd)/$stamp ;; esac
mkdir -p "$out"
cd "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() {  # name subject
  key "$1.key"
  openssl req -new -x509 -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

# issue name issuer subject-cn extensions [not-before not-after]
# A new key and a certificate for it with the given extension lines. With the
# dates, `openssl ca` signs: `openssl x509 -req` in OpenSSL 3.0 cannot set a
# start date (the database and config it needs are throw-away, in $tmp).
issue() {
  key "$1.key"
  openssl req -new -key "$1.key" -out "$tmp/$1.csr" -subj "/CN=$3" 2>/dev/null
  printf '%s\n' "$4" > "$tmp/$1.ext"
  if [ $# -ge 6 ]; then
    openssl ca -batch -config "$tmp/ca.cnf" -cert "$2.pem" -keyfile "$2.key" -in "$tmp/$1.csr" \
      -startdate "$5" -enddate "$6" -extfile "$tmp/$1.ext" -notext -out "$1.pem" 2>/dev/null
  else
    openssl x509 -req -in "$tmp/$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 8)" \
      -days 30 -extfile "$tmp/$1.ext" -out "$1.pem" 2>/dev/null
  fi
}

leaf() {  # name ca subject-cn san eku
  issue "$1" "$2" "$3" "$(printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s' "$5" "$4")"
}

ca ca "unitls test CA"
ca other_ca "unitls untrusted CA"
leaf server ca localhost "DNS:localhost,IP:127.0.0.1" serverAuth
leaf client ca "unitls test client" "DNS:client.test" clientAuth
leaf wrong_name ca wrong.example "DNS:wrong.example" serverAuth
leaf untrusted other_ca localhost "DNS:localhost,IP:127.0.0.1" serverAuth
cat server.pem ca.pem > server_chain.pem
printf 'this is not a PEM file\n' > garbage.pem
: > empty.pem

# ---- the zoo ----
both=serverAuth,clientAuth
leaf_ku='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature'

# Validity. `openssl ca` wants a database, a serial file and a policy.
mkdir "$tmp/newcerts"
: > "$tmp/index.txt"
openssl rand -hex 8 > "$tmp/serial"
cat > "$tmp/ca.cnf" <<CNF
[ca]
default_ca = zoo
[zoo]
database = $tmp/index.txt
new_certs_dir = $tmp/newcerts
serial = $tmp/serial
default_md = sha256
policy = anything
unique_subject = no
[anything]
commonName = supplied
CNF
day() { date -u -d "$1" +%Y%m%d%H%M%SZ; }
zoo_ext="$leaf_ku
extendedKeyUsage=$both
subjectAltName=DNS:localhost"
issue expired ca localhost "$zoo_ext" "$(day '30 days ago')" "$(day '1 day ago')"
issue not_yet_valid ca localhost "$zoo_ext" "$(day '1 day')" "$(day '30 days')"

# Names.
leaf wildcard ca wildcard "DNS:*.example.test" $both
leaf wildcard_localhost ca wildcard "DNS:*.localhost" $both
leaf partial_wildcard ca wildcard "DNS:a*.example.test" $both
leaf inner_wildcard ca wildcard "DNS:a.*.example.test" $both
leaf mixed_case ca mixed "DNS:MiXeD.Example.TEST" $both
leaf ip_only ca "ip only" "IP:127.0.0.1,IP:::1" $both
leaf ip_as_dns ca "ip as dns" "DNS:127.0.0.1" $both
issue cn_only ca localhost "$leaf_ku
extendedKeyUsage=$both"
issue cn_ip_only ca 127.0.0.1 "$leaf_ku
extendedKeyUsage=$both"
leaf cn_and_ip ca localhost IP:127.0.0.1 $both

# Chains and anchors.
key self_signed.key
openssl req -new -x509 -key self_signed.key -out self_signed.pem -days 30 -subj "/CN=localhost" \
  -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
  -addext extendedKeyUsage=$both -addext subjectAltName=DNS:localhost 2>/dev/null
issue not_a_ca ca "unitls not a CA" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyCertSign"
leaf not_a_ca_leaf not_a_ca localhost DNS:localhost $both
cat not_a_ca_leaf.pem not_a_ca.pem > not_a_ca_chain.pem
issue intermediate ca "unitls intermediate CA" "basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign"
leaf intermediate_leaf intermediate localhost DNS:localhost $both
cat intermediate_leaf.pem intermediate.pem > intermediate_chain.pem
cat intermediate_leaf.pem ca.pem other_ca.pem intermediate.pem > unordered_chain.pem
leaf untrusted_client other_ca "unitls untrusted client" DNS:client.test clientAuth
cat server.pem client.pem other_ca.pem > leaf_bundle.pem

# Extended Key Usage.
leaf eku_server_only ca localhost DNS:localhost serverAuth
leaf eku_client_only ca localhost DNS:localhost clientAuth
leaf eku_both ca localhost DNS:localhost $both
leaf eku_any ca localhost DNS:localhost anyExtendedKeyUsage
issue eku_none ca localhost "$leaf_ku
subjectAltName=DNS:localhost"
# keyUsage without digitalSignature: the key may not sign the handshake.
issue ku_key_encipherment ca localhost "basicConstraints=critical,CA:FALSE
keyUsage=critical,keyEncipherment
extendedKeyUsage=$both
subjectAltName=DNS:localhost"
# A dNSName with a NUL in it ("localhost\0evil").
issue nul_san ca localhost "$leaf_ku
extendedKeyUsage=$both
subjectAltName=DER:3010820e6c6f63616c686f7374006576696c"
# RSA keys under 2048 bits: a leaf, and a CA that signs an EC leaf.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.key 2>/dev/null
openssl req -new -key rsa1024.key -out "$tmp/rsa1024.csr" -subj /CN=localhost 2>/dev/null
printf '%s\n' "$leaf_ku" "extendedKeyUsage=$both" "subjectAltName=DNS:localhost" > "$tmp/rsa1024.ext"
openssl x509 -req -in "$tmp/rsa1024.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
  -days 30 -extfile "$tmp/rsa1024.ext" -out rsa1024.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024_ca.key 2>/dev/null
openssl req -new -key rsa1024_ca.key -out "$tmp/rsa1024_ca.csr" -subj "/CN=unitls RSA-1024 CA" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:TRUE,pathlen:0" "keyUsage=critical,keyCertSign,cRLSign" > "$tmp/rsa1024_ca.ext"
openssl x509 -req -in "$tmp/rsa1024_ca.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
  -days 30 -extfile "$tmp/rsa1024_ca.ext" -out rsa1024_ca.pem 2>/dev/null
leaf rsa1024_ca_leaf rsa1024_ca localhost DNS:localhost $both
cat rsa1024_ca_leaf.pem rsa1024_ca.pem > rsa1024_ca_chain.pem
# ... on the CAs of a chain: an intermediate's EKU limits what its leaves may do.
for eku in server:serverAuth client:clientAuth any:anyExtendedKeyUsage; do
  issue "${eku%%:*}_eku_ca" ca "unitls ${eku#*:} intermediate CA" "basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
extendedKeyUsage=${eku#*:}"
  leaf "${eku%%:*}_eku_ca_leaf" "${eku%%:*}_eku_ca" localhost DNS:localhost $both
  cat "${eku%%:*}_eku_ca_leaf.pem" "${eku%%:*}_eku_ca.pem" > "${eku%%:*}_eku_ca_chain.pem"
done

# Files that are not usable PEM.
openssl pkey -in server.key -aes256 -passout pass:unitls -out encrypted.key
openssl pkey -in server.key -aes256 -passout pass:unitls -traditional -out encrypted_traditional.key
openssl pkcs8 -topk8 -in server.key -passout pass:unitls -v2 aes-128-cbc -v2prf hmacWithSHA1 -out encrypted_sha1.key
openssl pkcs8 -topk8 -in server.key -passout pass:unitls -v2 des3 -v2prf hmacWithSHA1 -out encrypted_des3.key
openssl pkcs8 -topk8 -in server.key -passout pass:unitls -v1 PBE-SHA1-3DES -out encrypted_pkcs12.key
openssl pkcs8 -topk8 -in server.key -passout pass:unitls -scrypt -out encrypted_scrypt.key
openssl pkcs8 -topk8 -in server.key -passout pass:unitls -v2 camellia-256-cbc -out encrypted_camellia.key
printf 'p\303\244ss\n' > utf8.pass
openssl pkcs8 -topk8 -in server.key -passout file:utf8.pass -out encrypted_utf8.key
openssl pkcs8 -topk8 -in server.key -passout file:utf8.pass -v1 PBE-SHA1-3DES -out encrypted_pkcs12_utf8.key
rm utf8.pass
openssl x509 -in server.pem -outform DER -out server.der
openssl pkey -in server.key -outform DER -out server_key.der
openssl x509 -in ca.pem -outform DER -out ca.der
openssl x509 -in client.pem -outform DER -out client.der

[ -z "$stamp" ] || touch "$stamp"
