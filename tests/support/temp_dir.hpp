// A fresh scratch directory for a test, removed with everything in it on
// destruction (under $TMPDIR, else /tmp).
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "doctest.hpp"

namespace unitls::test {

class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    // mkdtemp(3) replaces the template's last six characters, which must
    // be "XXXXXX", with a unique name.
    std::string name = std::string(tmp && *tmp ? tmp : "/tmp") + "/unitls-test-XXXXXX";
    REQUIRE_MESSAGE(::mkdtemp(name.data()) != nullptr, "mkdtemp(" << name << "): " << std::strerror(errno));
    path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path() const { return path_.string(); }
  std::string file(std::string_view name) const { return (path_ / name).string(); }
  // Writes a file of the directory (a REQUIRE fails when it cannot).
  void write(std::string_view name, std::string_view text) const {
    std::ofstream out(file(name), std::ios::binary);
    out << text;
    REQUIRE(out.good());
  }

 private:
  std::filesystem::path path_;
};

}  // namespace unitls::test
