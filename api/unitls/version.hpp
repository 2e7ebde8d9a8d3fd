// The version of this unitls library.
#pragma once

#include <string_view>

namespace unitls {
inline constexpr std::string_view version = "0.1.0";
}  // namespace unitls
