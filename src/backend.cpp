#include <unitls/backend.hpp>

#include <array>

#include "engine.hpp"

namespace unitls {

namespace {
// The names, in registry order, as a contiguous array for the public span.
struct Names {
  std::array<std::string_view, 8> names{};
  std::size_t count = 0;
  Names() {
    for (const auto* entry : detail::backend_registry())
      if (count < names.size()) names[count++] = entry->name;
  }
};
}  // namespace

std::span<const std::string_view> available_backends() noexcept {
  static const Names names;
  return {names.names.data(), names.count};
}

std::string_view default_backend() noexcept { return detail::registry_default_backend(); }

std::string_view backend_library_version(std::string_view backend) noexcept {
  for (const auto* entry : detail::backend_registry())
    if (entry->name == backend) return entry->library_version();
  return {};
}

}  // namespace unitls
