// Counts heap allocations (docs/benchmarks.md, "Allocations per call"): the
// program's own malloc family, in front of glibc's, so that allocations made
// inside the TLS libraries count too, not only C++ new. Not in sanitizer
// builds, whose runtimes own malloc.
#include <atomic>
#include <cstddef>

#include "alloc_count.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BENCH_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define BENCH_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef BENCH_COUNT_ALLOCATIONS
#define BENCH_COUNT_ALLOCATIONS 1
#endif

namespace bench {
namespace {
std::atomic<unsigned long> allocations{0};
}

bool counts_allocations() noexcept { return BENCH_COUNT_ALLOCATIONS != 0; }
unsigned long allocation_count() noexcept { return allocations.load(std::memory_order_relaxed); }

}  // namespace bench

#if BENCH_COUNT_ALLOCATIONS
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);

void* malloc(std::size_t size) {
  bench::allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) {
  bench::allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) {
  bench::allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  bench::allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, size);
}
void* memalign(std::size_t alignment, std::size_t size) {
  bench::allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) return 22;  // EINVAL
  bench::allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = __libc_memalign(alignment, size);
  if (!p) return 12;  // ENOMEM
  *out = p;
  return 0;
}
}
#endif
