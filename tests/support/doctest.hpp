// The one place doctest is included from: Debian installs <doctest/doctest.h>,
// the Meson wrap provides <doctest.h>.
#pragma once
#if __has_include(<doctest/doctest.h>)
#include <doctest/doctest.h>
#else
#include <doctest.h>
#endif
