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

leaf() {  # name ca subject-cn san eku
  key "$1.key"
  openssl req -new -key "$1.key" -out "$tmp/$1.csr" -subj "/CN=$3" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=%s\n' "$5" "$4" > "$tmp/$1.ext"
  openssl x509 -req -in "$tmp/$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days 30 -extfile "$tmp/$1.ext" -out "$1.pem" 2>/dev/null
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
[ -z "$stamp" ] || touch "$stamp"
