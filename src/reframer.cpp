#include "reframer.hpp"

#include <algorithm>
#include <cstring>

namespace unitls::detail {

namespace {

constexpr unsigned char change_cipher_spec = 20, handshake = 22, application_data = 23;
constexpr unsigned char server_hello = 2, certificate = 11;
constexpr unsigned ext_encrypt_then_mac = 22;  // RFC 7366

// A ServerHello's body (RFC 5246 7.4.1.3) has the extension `type`.
bool server_hello_extension(std::span<const unsigned char> body, unsigned type) {
  std::size_t at = 2 + 32;  // server_version, random
  if (body.size() <= at) return false;
  at += 1 + body[at] + 2 + 1;  // session_id, cipher_suite, compression_method
  if (body.size() < at + 2) return false;
  const std::size_t end = at + 2 + (static_cast<std::size_t>(body[at]) << 8 | body[at + 1]);
  if (end > body.size()) return false;
  for (at += 2; end - at >= 4;) {
    if ((static_cast<unsigned>(body[at]) << 8 | body[at + 1]) == type) return true;
    at += 4 + (static_cast<std::size_t>(body[at + 2]) << 8 | body[at + 3]);
    if (at > end) return false;
  }
  return false;
}

}  // namespace

void Reframer::release() {
  std::vector<unsigned char>().swap(in_);
  std::vector<unsigned char>().swap(messages_);
  std::vector<unsigned char>().swap(out_);
  std::vector<unsigned char>().swap(certificate_);
  out_pos_ = 0;
  released_ = true;
}

// in_ holds one whole record.
void Reframer::process() {
  const unsigned char type = in_[0];
  const std::size_t len = in_.size() - header;
  const unsigned char* body = in_.data() + header;
  if (type == handshake && len > 0 && len <= max_fragment_ && messages_.empty() && whole_messages(body, len) == len) {
    // Whole messages, nothing held (the usual record): as it came.
    if (out_.capacity() == 0) out_.reserve(usual_record);
    out_.insert(out_.end(), in_.begin(), in_.end());
  } else if (type == handshake && len > 0) {
    if (messages_.empty()) std::memcpy(version_, in_.data() + 1, 2);
    messages_.insert(messages_.end(), body, body + len);
    emit_messages(false);
  } else {
    // Another record between the pieces of a message: the stack judges the
    // pieces as they came.
    emit_messages(true);
    out_.insert(out_.end(), in_.begin(), in_.end());
    if (type == change_cipher_spec || type == application_data) active_ = false;  // encrypted from here on
  }
  in_.clear();
}

// How many of the n bytes at p are whole handshake messages; a ServerHello
// among them is read for encrypt_then_mac.
std::size_t Reframer::whole_messages(const unsigned char* p, std::size_t n) {
  std::size_t complete = 0;
  while (n - complete >= 4) {
    const std::size_t len = static_cast<std::size_t>(p[complete + 1]) << 16 |
                            static_cast<std::size_t>(p[complete + 2]) << 8 | p[complete + 3];
    if (n - complete - 4 < len) break;
    if (p[complete] == server_hello) encrypt_then_mac_ = server_hello_extension({p + complete + 4, len}, ext_encrypt_then_mac);
    if (p[complete] == certificate) certificate_.assign(p + complete, p + complete + 4 + len);
    complete += 4 + len;
  }
  return complete;
}

// Frames the complete messages held (with all: everything held) into
// records of at most max_fragment_ bytes.
void Reframer::emit_messages(bool all) {
  const std::size_t complete = whole_messages(messages_.data(), messages_.size());
  const std::size_t upto = all ? messages_.size() : complete;
  for (std::size_t off = 0; off < upto;) {
    const std::size_t n = std::min(upto - off, max_fragment_);
    const unsigned char h[header] = {handshake, version_[0], version_[1], static_cast<unsigned char>(n >> 8),
                                     static_cast<unsigned char>(n & 0xff)};
    out_.insert(out_.end(), h, h + header);
    out_.insert(out_.end(), messages_.begin() + static_cast<std::ptrdiff_t>(off),
                messages_.begin() + static_cast<std::ptrdiff_t>(off + n));
    off += n;
  }
  messages_.erase(messages_.begin(), messages_.begin() + static_cast<std::ptrdiff_t>(upto));
}

}  // namespace unitls::detail
