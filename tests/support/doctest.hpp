// The one place doctest is included from: Debian installs <doctest/doctest.h>,
// the Meson wrap provides <doctest.h>. Also teaches doctest to print the
// types our assertions compare, so a failure says "want_read", not "1".
#pragma once

#define DOCTEST_CONFIG_USE_STD_HEADERS
#include <ostream>
#include <string>
#include <system_error>

#if __has_include(<doctest/doctest.h>)
#include <doctest/doctest.h>
#else
#include <doctest.h>
#endif

#include <unitls/error.hpp>

namespace doctest {
template <>
struct StringMaker<unitls::errc> {
  static String convert(unitls::errc e) { return unitls::to_string(e); }
};
template <>
struct StringMaker<std::error_code> {
  static String convert(const std::error_code& ec) {
    if (!ec) return "(no error)";
    std::string s = ec.category() == unitls::category()
                        ? unitls::to_string(static_cast<unitls::errc>(ec.value()))
                        : std::string(ec.category().name()) + ":" + std::to_string(ec.value());
    s += " (" + ec.message() + ")";
    return s.c_str();
  }
};
}  // namespace doctest
