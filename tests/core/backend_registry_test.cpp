// The registry Meson generates: the backends this build chose, in order, and
// the default picked with -Ddefault_backend.
#include <string>

#include <unitls/backend.hpp>

#include "doctest.hpp"

TEST_CASE("available_backends() lists exactly the backends this build compiled in, in order") {
  std::string listed;
  for (std::string_view b : unitls::available_backends()) {
    if (!listed.empty()) listed += ",";
    listed += b;
  }
  CHECK(listed == UNITLS_EXPECTED_BACKENDS);
}

TEST_CASE("default_backend() is the backend chosen at build time") {
  CHECK(unitls::default_backend() == UNITLS_EXPECTED_DEFAULT_BACKEND);
}

TEST_CASE("every compiled-in backend reports its library version; others report none") {
  for (std::string_view b : unitls::available_backends())
    CHECK_FALSE(unitls::backend_library_version(b).empty());
  CHECK(unitls::backend_library_version("no-such-backend").empty());
}
