// Which TLS stacks this build of unitls contains.
#pragma once

#include <span>
#include <string_view>

#include <unitls/export.hpp>

namespace unitls {

// The backends compiled into this library, e.g. {"openssl", "mbedtls", "gnutls"},
// in a fixed order decided at build time. Never empty.
UNITLS_API std::span<const std::string_view> available_backends() noexcept;

// The backend used when Config::backend is empty: chosen at build time with
// `meson setup -Ddefault_backend=...` (or the first available one for "auto").
UNITLS_API std::string_view default_backend() noexcept;

// The version of the backend's library as it reports itself at run time
// ("OpenSSL 3.0.19 ..."), or "" for a backend that is not compiled in.
UNITLS_API std::string_view backend_library_version(std::string_view backend) noexcept;

}  // namespace unitls
