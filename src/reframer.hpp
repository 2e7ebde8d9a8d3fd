// Plaintext handshake messages across records, for a stack that cannot take
// them so.
//
// RFC 5246 6.2.1 lets a peer split handshake messages across records, and
// put several in one, at will; OpenSSL and GnuTLS take that. mbedTLS 2.28
// takes a message only whole in one record, and wolfSSL 5.5.4 not one
// whose 4-byte header is split (docs/backend-notes.md). Until the peer's
// records are encrypted (its ChangeCipherSpec, or application data), such
// a backend reads the peer's records through a Reframer, which hands them
// on in records of whole messages: the transcript hash covers the messages,
// not the records, so the stack computes the same Finished. After that it
// passes records as they come, and the backend releases it.
//
// It reads the transport itself one record at a time, never past the
// record it gathers (room()), so that nothing beyond the peer's last record
// is taken from the transport (what follows a close_notify is not ours).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

namespace unitls::detail {

class Reframer {
 public:
  // max_fragment: the longest record body the stack takes (2^14, or the
  // stack's own input buffer).
  explicit Reframer(std::size_t max_fragment) : max_fragment_(max_fragment) {}

  bool active() const { return active_; }
  bool has_output() const { return out_pos_ < out_.size(); }
  // Inactive and drained: its buffers go (an idle connection keeps none).
  void release();
  bool released() const { return released_; }

  // Room for the bytes that complete the record being gathered (its
  // header, then its body), to read into; filled() says how many came.
  // (Inline, as take(): they run for every read of the handshake.)
  std::span<unsigned char> room() {
    if (in_.capacity() == 0) in_.reserve(usual_record);
    const std::size_t have = in_.size();
    const std::size_t want = have < header ? header - have : header + body_length() - have;
    in_.resize(have + want);
    in_filled_ = have;
    return {in_.data() + have, want};
  }
  void filled(std::size_t n) {
    in_.resize(in_filled_ + n);
    if (in_.size() >= header && in_.size() == header + body_length()) process();
  }

  // Records for the stack: up to len bytes into buf.
  std::size_t take(unsigned char* buf, std::size_t len) {
    const std::size_t n = std::min(len, out_.size() - out_pos_);
    std::memcpy(buf, out_.data() + out_pos_, n);
    out_pos_ += n;
    if (out_pos_ == out_.size()) {
      out_.clear();
      out_pos_ = 0;
    }
    return n;
  }

  // A client: the server's ServerHello answered encrypt_then_mac (RFC 7366
  // 2), which a stack then uses with a CBC suite.
  bool encrypt_then_mac() const { return encrypt_then_mac_; }
  // The last Certificate message handed on whole (RFC 5246 7.4.2, its
  // header included; empty: none), kept until release(): a stack that
  // fails a certificate it cannot parse keeps nothing the application could
  // be shown (peer_chain).
  std::span<const unsigned char> certificate_message() const { return certificate_; }

 private:
  static constexpr std::size_t header = 5;  // a record's: type, version, length
  // Room for the usual records from the start: a handshake's records then
  // cost one allocation in in_ and one in out_.
  static constexpr std::size_t usual_record = 1024;
  std::size_t body_length() const { return static_cast<std::size_t>(in_[3]) << 8 | in_[4]; }
  void process();
  std::size_t whole_messages(const unsigned char* p, std::size_t n);
  void emit_messages(bool all);

  std::size_t max_fragment_;
  bool active_ = true;
  bool released_ = false;
  bool encrypt_then_mac_ = false;
  std::vector<unsigned char> in_;        // read, not yet a whole record
  std::size_t in_filled_ = 0;            // of in_, before room()
  std::vector<unsigned char> messages_;  // handshake content, not yet a whole message
  std::vector<unsigned char> out_;       // records ready for the stack
  std::vector<unsigned char> certificate_;  // certificate_message()
  std::size_t out_pos_ = 0;
  unsigned char version_[2] = {3, 3};    // of the records the held messages came in
};

}  // namespace unitls::detail
