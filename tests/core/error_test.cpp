#include <set>
#include <string>

#include <unitls/error.hpp>

#include "doctest.hpp"

TEST_CASE("the unitls category is named unitls and has a distinct message for every errc") {
  CHECK(std::string(unitls::category().name()) == "unitls");
  std::set<std::string> messages;
  for (int v = static_cast<int>(unitls::errc::want_read);
       v <= static_cast<int>(unitls::errc::unsupported); ++v) {
    auto e = static_cast<unitls::errc>(v);
    std::error_code ec = e;  // is_error_code_enum
    CHECK(ec.category() == unitls::category());
    CHECK(ec.value() == v);
    CHECK(ec);  // never the empty code
    std::string message = ec.message();
    CHECK(message.find("unknown") == std::string::npos);
    messages.insert(message);
    CHECK(std::string(unitls::to_string(e)) != "unknown");
  }
  CHECK(messages.size() == 15);
}

TEST_CASE("to_string names the enumerator") {
  CHECK(std::string(unitls::to_string(unitls::errc::zero_return)) == "zero_return");
  CHECK(std::string(unitls::to_string(unitls::errc::already_sent)) == "already_sent");
  CHECK(std::string(unitls::to_string(static_cast<unitls::errc>(99))) == "unknown");
}

TEST_CASE("an errc compares equal to the error_code made from it") {
  std::error_code ec = unitls::make_error_code(unitls::errc::want_write);
  CHECK(ec == unitls::errc::want_write);
  CHECK(ec != unitls::errc::want_read);
}
