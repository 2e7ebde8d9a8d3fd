// Heap allocations counted since the program started (alloc_count.cpp).
#pragma once

namespace bench {
// False in sanitizer builds, where nothing is counted.
bool counts_allocations() noexcept;
unsigned long allocation_count() noexcept;
}  // namespace bench
