// A small test harness: TEST(name) { ... } registers a case; CHECK* throw
// on failure. `PROGRAM [--list] [NAME...]` runs the named cases (all by
// default) and ends with "N passed, N failed".
#pragma once

#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace harness {

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Registrar {
  Registrar(const char* name, std::function<void()> body);
};

[[noreturn]] void fail(const char* file, int line, const std::string& what);

// The environment variable, or a Failure naming it.
std::string env(const char* name);

// Runs a Python driver on the test cluster (EMBER_PYTHON, EMBER_ADDRESS,
// EMBER_TEST_CODE): `source` after `import ember, json` and ember.init();
// returns the last line it printed.
std::string python(const std::string& source);

}  // namespace harness

#define HARNESS_CAT2(a, b) a##b
#define HARNESS_CAT(a, b) HARNESS_CAT2(a, b)
#define TEST(name)                                                                      \
  static void test_##name();                                                            \
  static harness::Registrar HARNESS_CAT(registrar_, name)(#name, test_##name);          \
  static void test_##name()

#define CHECK(cond) \
  do { if (!(cond)) harness::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); } while (0)

#define CHECK_EQ(a, b)                                                                               \
  do {                                                                                               \
    const auto check_a_ = (a); /* (copies: a reference into a temporary would dangle) */            \
    const auto check_b_ = (b);                                                                       \
    if (!(check_a_ == check_b_)) {                                                                   \
      std::ostringstream check_s_;                                                                   \
      check_s_ << "CHECK_EQ(" #a ", " #b "): " << check_a_ << " != " << check_b_;                   \
      harness::fail(__FILE__, __LINE__, check_s_.str());                                             \
    }                                                                                                \
  } while (0)

// Runs `stmt`, which must throw `type`; `e` is the caught error in `then`.
#define CHECK_THROWS(type, stmt, then)                                                               \
  do {                                                                                               \
    bool check_thrown_ = false;                                                                      \
    try {                                                                                            \
      stmt;                                                                                          \
    } catch (const type& e) {                                                                        \
      check_thrown_ = true;                                                                          \
      then;                                                                                          \
    }                                                                                                \
    if (!check_thrown_) harness::fail(__FILE__, __LINE__, "expected " #type " from " #stmt);        \
  } while (0)
