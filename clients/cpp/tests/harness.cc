#include "harness.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>

namespace harness {

namespace {

std::vector<std::pair<std::string, std::function<void()>>>& cases() {
  static std::vector<std::pair<std::string, std::function<void()>>> all;
  return all;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

Registrar::Registrar(const char* name, std::function<void()> body) { cases().emplace_back(name, std::move(body)); }

void fail(const char* file, int line, const std::string& what) {
  throw Failure(std::string(file) + ":" + std::to_string(line) + ": " + what);
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) throw Failure(std::string("set ") + name + " (tests/test_cpp_client.py does)");
  return v;
}

std::string python(const std::string& source) {
  std::string code = env("EMBER_TEST_CODE");
  std::string program =
      "import json, sys\nsys.path.insert(0, '" + code + "')\nimport ember\n"
      "from ember.job_config import JobConfig\n"
      "ember.init(address='" + env("EMBER_ADDRESS") + "', job_config=JobConfig(code_search_path=['" + code +
      "']), log_to_driver=False)\n" + source + "\n";
  std::string command = shell_quote(env("EMBER_PYTHON")) + " -c " + shell_quote(program) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw Failure("cannot run " + command);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int status = pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw Failure("the Python driver failed:\n" + out);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  auto start = out.rfind('\n');
  return start == std::string::npos ? out : out.substr(start + 1);
}

}  // namespace harness

int main(int argc, char** argv) {
  std::vector<std::string> wanted(argv + 1, argv + argc);
  if (wanted.size() == 1 && wanted[0] == "--list") {
    for (const auto& [name, body] : harness::cases()) std::cout << name << "\n";
    return 0;
  }
  int passed = 0, failed = 0;
  for (const auto& want : wanted) {
    bool known = false;
    for (const auto& c : harness::cases()) known = known || c.first == want;
    if (!known) {
      std::cerr << "no test named " << want << "\n";
      return 2;
    }
  }
  for (const auto& [name, body] : harness::cases()) {
    if (!wanted.empty()) {
      bool selected = false;
      for (const auto& w : wanted) selected = selected || w == name;
      if (!selected) continue;
    }
    try {
      body();
      ++passed;
      std::cout << "ok " << name << std::endl;
    } catch (const std::exception& e) {
      ++failed;
      std::cout << "FAILED " << name << ": " << e.what() << std::endl;
    }
  }
  std::cout << passed << " passed, " << failed << " failed" << std::endl;
  return failed ? 1 : 0;
}
