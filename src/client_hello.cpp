#include "client_hello.hpp"

#include <algorithm>
#include <optional>
#include <string>

namespace unitls::detail {

namespace {

struct Reader {
  const unsigned char* p;
  const unsigned char* end;
  std::size_t left() const { return static_cast<std::size_t>(end - p); }
  bool skip(std::size_t n) {
    if (left() < n) return false;
    p += n;
    return true;
  }
  bool u8(std::size_t& v) {
    if (left() < 1) return false;
    v = p[0];
    p += 1;
    return true;
  }
  bool u16(std::size_t& v) {
    if (left() < 2) return false;
    v = static_cast<std::size_t>(p[0]) << 8 | p[1];
    p += 2;
    return true;
  }
  // A u16-length-prefixed vector, as its own reader.
  bool vector16(Reader& out) {
    std::size_t n = 0;
    if (!u16(n) || left() < n) return false;
    out = Reader{p, p + n};
    p += n;
    return true;
  }
};

constexpr std::size_t ext_server_name = 0;
constexpr std::size_t ext_supported_groups = 10;
constexpr std::size_t ext_alpn = 16;
constexpr std::size_t ext_encrypt_then_mac = 22;
constexpr std::size_t ext_supported_versions = 43;

// ProtocolNameList<2..2^16-1> of ProtocolName<1..2^8-1>, filling the body;
// the names go to `names` when it is given.
bool walk_alpn(Reader body, std::vector<std::string>* names) {
  Reader list{};
  if (!body.vector16(list) || body.left() != 0 || list.left() == 0) return false;
  while (list.left() > 0) {
    std::size_t n = 0;
    if (!list.u8(n) || n == 0 || list.left() < n) return false;
    if (names) names->emplace_back(reinterpret_cast<const char*>(list.p), n);
    list.p += n;
  }
  return true;
}

bool host_name_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

class HelloCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "unitls.hello"; }
  std::string message(int value) const override {
    switch (static_cast<HelloFault>(value)) {
      case HelloFault::none: return "no fault";
      case HelloFault::repeated_extension: return "the ClientHello has an extension twice";
      case HelloFault::alpn_malformed: return "the ClientHello's ALPN extension is malformed";
      case HelloFault::list_malformed:
        return "the ClientHello's supported_groups or supported_versions extension is malformed";
      case HelloFault::server_name_malformed:
        return "the ClientHello's server_name extension is malformed or does not start with a host_name";
      case HelloFault::server_name_refused:
        return "the ClientHello's server name is not a host name (over 255 bytes, or a byte other than "
               "a letter, a digit, '-' or '.')";
    }
    return "unknown ClientHello fault " + std::to_string(value);
  }
};

constinit const HelloCategory hello_category_instance;

}  // namespace

const std::error_category& hello_category() noexcept { return hello_category_instance; }

// ServerNameList <1..2^16-1> of {NameType, opaque HostName<1..2^16-1>}: one
// entry, a host_name (RFC 6066 3 defines no other type; OpenSSL refuses a
// list of more than one entry, or of another type, with decode_error and
// cannot be told otherwise).
ServerNameVerdict judge_server_name(std::span<const unsigned char> extension_body) {
  constexpr std::size_t max_host_name = 255;
  ServerNameVerdict verdict;
  verdict.fault = HelloFault::server_name_malformed;
  Reader body{extension_body.data(), extension_body.data() + extension_body.size()};
  Reader list{};
  std::size_t type = 0;
  Reader name{};
  if (!body.vector16(list) || body.left() != 0 || !list.u8(type) || !list.vector16(name) ||
      list.left() != 0 || name.left() == 0)
    return verdict;
  if (type != 0) return verdict;  // not a host_name
  if (name.left() > max_host_name) {
    verdict.fault = HelloFault::server_name_refused;
    return verdict;
  }
  for (const unsigned char* c = name.p; c != name.end; ++c) {
    if (!host_name_byte(*c)) {
      verdict.fault = HelloFault::server_name_refused;
      return verdict;
    }
  }
  verdict.fault = HelloFault::none;
  verdict.name = std::string_view(reinterpret_cast<const char*>(name.p), name.left());
  return verdict;
}

void HelloJudge::judge_extension(unsigned type, std::span<const unsigned char> body) {
  if (type < 64) {
    const std::uint64_t bit = std::uint64_t{1} << type;
    if (low_seen_ & bit) {
      repeated_ = true;
      return;
    }
    low_seen_ |= bit;
  } else {
    const auto t = static_cast<std::uint16_t>(type);
    const auto seen_end = seen_.begin() + static_cast<std::ptrdiff_t>(seen_count_);
    if (std::find(seen_.begin(), seen_end, t) != seen_end || std::find(more_.begin(), more_.end(), t) != more_.end()) {
      repeated_ = true;
      return;
    }
    if (seen_count_ < seen_.size()) {
      seen_[seen_count_++] = t;
    } else {
      more_.push_back(t);
    }
  }
  if (fault_ != HelloFault::none) return;
  if (type == ext_server_name) {
    ServerNameVerdict verdict = judge_server_name(body);
    fault_ = verdict.fault;
    name_ = verdict.name;
  } else if (type == ext_alpn && !walk_alpn(Reader{body.data(), body.data() + body.size()}, nullptr)) {
    fault_ = HelloFault::alpn_malformed;
  } else if (type == ext_supported_groups || type == ext_supported_versions) {
    // NamedGroupList<2..2^16-1> (RFC 8422 5.1.1, RFC 8446 4.2.7);
    // ProtocolVersion versions<2..254> (RFC 8446 4.2.1).
    const std::size_t prefix = type == ext_supported_groups ? 2 : 1;
    std::size_t n = body.size() >= prefix ? body[0] : 0;
    if (prefix == 2 && body.size() >= 2) n = n << 8 | body[1];
    if (body.size() < prefix || n != body.size() - prefix || n == 0 || n % 2 != 0) fault_ = HelloFault::list_malformed;
  }
}

namespace {

// The hello's framing (see ClientHelloBody); its extensions block, or
// nullopt.
std::optional<Reader> framed_extensions(std::span<const unsigned char> body) {
  Reader r{body.data(), body.data() + body.size()};
  std::size_t n = 0;
  if (!r.skip(2 + 32) || !r.u8(n) || n > 32 || !r.skip(n) ||  // version, random, session_id
      !r.u16(n) || n == 0 || n % 2 != 0 || !r.skip(n) ||      // cipher_suites
      !r.u8(n) || n == 0 || !r.skip(n))                       // compression_methods
    return std::nullopt;
  Reader extensions{r.p, r.p};  // none at all is allowed
  if (r.left() != 0 && (!r.vector16(extensions) || r.left() != 0)) return std::nullopt;
  return extensions;  // (each extension's own framing: read_client_hello_body)
}

}  // namespace

ClientHelloBody read_client_hello_body(std::span<const unsigned char> body) {
  ClientHelloBody hello;
  std::optional<Reader> extensions = framed_extensions(body);
  if (!extensions) return hello;
  while (extensions->left() > 0) {
    std::size_t type = 0;
    Reader ext{};
    // A framing fault anywhere undoes what was judged: nothing of it counts.
    if (!extensions->u16(type) || !extensions->vector16(ext)) return ClientHelloBody{};
    const std::size_t size = ext.left();
    hello.judged.extension(static_cast<unsigned>(type), std::span<const unsigned char>(ext.p, size));
    if (type == ext_alpn && !hello.has_alpn) {
      hello.has_alpn = true;
      hello.alpn = std::span<const unsigned char>(ext.p, size);
    } else if (type == ext_supported_groups && size >= 2) {
      hello.has_groups = true;
      hello.groups = std::span<const unsigned char>(ext.p + 2, size - 2);
    } else if (type == ext_encrypt_then_mac) {
      hello.offers_encrypt_then_mac = true;
    } else if (type == ext_supported_versions && size >= 1) {
      for (std::size_t i = 1; i + 1 < size; i += 2)
        hello.offers_tls1_3 = hello.offers_tls1_3 || (ext.p[i] == 3 && ext.p[i + 1] == 4);
    }
  }
  hello.parses = true;
  return hello;
}

ClientHelloScan scan_client_hello(std::span<const unsigned char> raw, std::size_t max_record) {
  constexpr std::size_t header = 5;  // type, version, length
  constexpr std::size_t max_hello = 1u << 16;
  ClientHelloScan scan;
  std::vector<unsigned char> msg;
  for (std::size_t pos = 0;;) {
    if (raw.size() - pos < header) return scan;  // need_more
    scan.state = ClientHelloScan::State::malformed;
    if (raw[pos] != 22) return scan;  // not a handshake record
    const std::size_t len = static_cast<std::size_t>(raw[pos + 3]) << 8 | raw[pos + 4];
    if (len > max_record) return scan;
    scan.state = ClientHelloScan::State::need_more;
    if (raw.size() - pos - header < len) return scan;
    msg.insert(msg.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos + header),
               raw.begin() + static_cast<std::ptrdiff_t>(pos + header + len));
    pos += header + len;
    if (msg.size() < 4) continue;
    const std::size_t body = static_cast<std::size_t>(msg[1]) << 16 | static_cast<std::size_t>(msg[2]) << 8 | msg[3];
    if (msg[0] != 1 || body > max_hello) {  // not a ClientHello
      scan.state = ClientHelloScan::State::malformed;
      return scan;
    }
    if (msg.size() - 4 < body) continue;
    const ClientHelloBody hello = read_client_hello_body(std::span<const unsigned char>(msg.data() + 4, body));
    // What was judged stands, also in a hello that does not parse (a
    // refused name is refused whatever follows).
    scan.fault = hello.judged.fault();
    scan.server_name = hello.judged.server_name();
    scan.state = ClientHelloScan::State::malformed;
    if (!hello.parses) return scan;
    if (hello.has_alpn && !walk_alpn(Reader{hello.alpn.data(), hello.alpn.data() + hello.alpn.size()}, &scan.alpn)) {
      scan.alpn.clear();
      return scan;
    }
    scan.has_alpn = hello.has_alpn;
    scan.has_groups = hello.has_groups;
    scan.groups.assign(hello.groups.begin(), hello.groups.end());
    scan.offers_tls1_3 = hello.offers_tls1_3;
    scan.offers_encrypt_then_mac = hello.offers_encrypt_then_mac;
    scan.state = ClientHelloScan::State::complete;
    return scan;
  }
}

std::span<const unsigned char> prefer_alpn(std::span<const unsigned char> ours, std::span<const unsigned char> offered) {
  for (std::size_t i = 0; i < ours.size() && i + 1u + ours[i] <= ours.size(); i += 1u + ours[i]) {
    const std::span<const unsigned char> want = ours.subspan(i + 1, ours[i]);
    for (std::size_t j = 0; j < offered.size(); j += 1u + offered[j]) {
      const std::size_t len = offered[j];
      if (j + 1 + len > offered.size()) break;  // malformed offer
      if (len == want.size() && std::equal(want.begin(), want.end(), offered.begin() + static_cast<std::ptrdiff_t>(j + 1)))
        return offered.subspan(j + 1, len);
    }
  }
  return {};
}

}  // namespace unitls::detail
