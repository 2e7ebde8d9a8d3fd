// SHA-256 (FIPS 180-4), for certificate fingerprints: the core computes them
// itself so that no backend's digest code decides what a fingerprint is.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace unitls::detail {

class Sha256 {
 public:
  using Digest = std::array<std::byte, 32>;

  Sha256();
  void update(std::span<const std::byte> data);
  // The digest of everything given to update(); the object is spent after.
  Digest finish();

 private:
  void compress(const std::byte* block);

  std::array<std::uint32_t, 8> state_;
  std::array<std::byte, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;  // bytes so far
};

Sha256::Digest sha256(std::span<const std::byte> data);

}  // namespace unitls::detail
