// Overwriting secrets (keys, passwords, key-log secrets) before their
// memory goes back: the writes go through a volatile pointer, so the
// compiler may not drop them.
#pragma once

#include <cstddef>

namespace unitls::detail {

inline void secure_wipe(void* p, std::size_t n) noexcept {
  auto* v = static_cast<volatile unsigned char*>(p);
  while (n--) *v++ = 0;
}

template <class Container>
void secure_wipe(Container& c) noexcept {
  secure_wipe(static_cast<void*>(c.data()), c.size() * sizeof(*c.data()));
}

}  // namespace unitls::detail
