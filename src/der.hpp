// A DER (X.690) reader with only what certificates need: the elements of a
// certificate are walked with it by the verification facts (src/x509.cpp)
// and by the description of a certificate (src/certificate.cpp), so both
// read the same bytes the same way.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

namespace unitls::detail {

struct Tlv {
  std::uint8_t tag = 0;
  std::span<const std::byte> value;  // the contents
  std::span<const std::byte> whole;  // tag, length and contents
};

class Der {
 public:
  explicit Der(std::span<const std::byte> data) : data_(data) {}
  bool empty() const { return data_.empty(); }

  // The next element; false when the data is malformed or exhausted.
  bool next(Tlv& out) {
    if (data_.size() < 2) return false;
    const auto tag = static_cast<std::uint8_t>(data_[0]);
    if ((tag & 0x1f) == 0x1f) return false;  // high tag numbers: nothing we read uses them
    std::size_t len = static_cast<std::uint8_t>(data_[1]);
    std::size_t header = 2;
    if (len & 0x80) {
      const std::size_t n = len & 0x7f;
      if (n == 0 || n > 4 || data_.size() < 2 + n) return false;
      len = 0;
      for (std::size_t i = 0; i < n; ++i)
        len = (len << 8) | static_cast<std::uint8_t>(data_[2 + i]);
      header += n;
    }
    if (data_.size() - header < len) return false;
    out.tag = tag;
    out.value = data_.subspan(header, len);
    out.whole = data_.subspan(0, header + len);
    data_ = data_.subspan(header + len);
    return true;
  }

  // The next element if it has this tag (a missing OPTIONAL field leaves
  // the reader where it was).
  bool next_if(std::uint8_t tag, Tlv& out) {
    if (data_.empty() || static_cast<std::uint8_t>(data_[0]) != tag) return false;
    return next(out);
  }

 private:
  std::span<const std::byte> data_;
};

constexpr std::uint8_t tag_boolean = 0x01;
constexpr std::uint8_t tag_integer = 0x02;
constexpr std::uint8_t tag_bit_string = 0x03;
constexpr std::uint8_t tag_octet_string = 0x04;
constexpr std::uint8_t tag_oid = 0x06;
constexpr std::uint8_t tag_sequence = 0x30;
constexpr std::uint8_t tag_set = 0x31;
// The string and time types of X.520 names and X.509 validity.
constexpr std::uint8_t tag_utf8_string = 0x0c;
constexpr std::uint8_t tag_numeric_string = 0x12;
constexpr std::uint8_t tag_printable_string = 0x13;
constexpr std::uint8_t tag_teletex_string = 0x14;
constexpr std::uint8_t tag_ia5_string = 0x16;
constexpr std::uint8_t tag_utc_time = 0x17;
constexpr std::uint8_t tag_generalized_time = 0x18;
constexpr std::uint8_t tag_visible_string = 0x1a;
constexpr std::uint8_t tag_universal_string = 0x1c;
constexpr std::uint8_t tag_bmp_string = 0x1e;

inline bool oid_is(const Tlv& t, std::initializer_list<std::uint8_t> oid) {
  if (t.tag != tag_oid || t.value.size() != oid.size()) return false;
  return std::equal(oid.begin(), oid.end(), t.value.begin(),
                    [](std::uint8_t a, std::byte b) { return a == static_cast<std::uint8_t>(b); });
}

inline std::string as_text(std::span<const std::byte> v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

}  // namespace unitls::detail
