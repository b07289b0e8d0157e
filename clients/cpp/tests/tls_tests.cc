// The C++ client against a cluster started with `ember start --head --tls`
// (tests/test_cpp_client.py): mutual TLS with the cluster's files, given as
// options, by the environment, or found in the session directory; plaintext
// and another CA's certificate refused. Needs EMBER_ADDRESS,
// EMBER_AUTH_TOKEN, EMBER_TEST_CODE, EMBER_TEST_TLS_DIR (the session's tls/)
// and EMBER_TEST_OTHER_TLS_DIR (files of another CA).

#include <cstdlib>

#include "ember/client.h"
#include "harness.h"

namespace {

ember::ConnectOptions with_files(const std::string& dir, const std::string& cert = "node") {
  ember::ConnectOptions options;
  options.code_search_path = {harness::env("EMBER_TEST_CODE")};
  options.tls_ca_file = dir + "/ca.crt";
  options.tls_cert_file = dir + "/" + cert + ".crt";
  options.tls_key_file = dir + "/" + cert + ".key";
  return options;
}

// Runs `body` with EMBER_SESSION_ROOT pointing nowhere: no session files to fall back on.
template <typename Body>
void without_session_files(Body body) {
  std::string root = harness::env("EMBER_SESSION_ROOT");
  setenv("EMBER_SESSION_ROOT", "/nonexistent", 1);
  try {
    body();
  } catch (...) {
    setenv("EMBER_SESSION_ROOT", root.c_str(), 1);
    throw;
  }
  setenv("EMBER_SESSION_ROOT", root.c_str(), 1);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(mutual_tls_with_the_files_given_as_options) {
  without_session_files([] {
    auto client = ember::Client::connect(with_files(harness::env("EMBER_TEST_TLS_DIR")));
    CHECK_EQ(client.call("polyglot_fns:add", {2, 3}).as_int(), 5);
    CHECK(client.get(client.put(ember::Bytes(3 << 20, 9))).as_bytes().size() == 3u << 20);
  });
}

TEST(mutual_tls_with_the_files_from_the_environment) {
  std::string dir = harness::env("EMBER_TEST_TLS_DIR");
  setenv("EMBER_TLS_CA", (dir + "/ca.crt").c_str(), 1);
  setenv("EMBER_TLS_CERT", (dir + "/node.crt").c_str(), 1);
  setenv("EMBER_TLS_KEY", (dir + "/node.key").c_str(), 1);
  without_session_files([] {
    ember::ConnectOptions options;
    options.code_search_path = {harness::env("EMBER_TEST_CODE")};
    CHECK_EQ(ember::Client::connect(options).call("polyglot_fns:add", {4, 5}).as_int(), 9);
  });
  unsetenv("EMBER_TLS_CA");
  unsetenv("EMBER_TLS_CERT");
  unsetenv("EMBER_TLS_KEY");
}

TEST(mutual_tls_with_the_session_directorys_files) {
  // (a client on a node of the cluster: the session's tls/ files, as its token)
  ember::ConnectOptions options;
  options.code_search_path = {harness::env("EMBER_TEST_CODE")};
  CHECK_EQ(ember::Client::connect(options).call("polyglot_fns:add", {1, 1}).as_int(), 2);
}

TEST(plaintext_and_another_cas_certificate_are_refused) {
  without_session_files([] {
    ember::ConnectOptions plain;
    plain.connect_timeout_s = 2;
    CHECK_THROWS(ember::RequestError, ember::Client::connect(plain), {
      CHECK_EQ(e.code(), 14);  // UNAVAILABLE
      CHECK(contains(e.details(), "if the cluster uses TLS"));
    });
    auto impostor = with_files(harness::env("EMBER_TEST_OTHER_TLS_DIR"));
    impostor.connect_timeout_s = 2;
    CHECK_THROWS(ember::RequestError, ember::Client::connect(impostor), CHECK_EQ(e.code(), 14));
    // The cluster's CA but another CA's client certificate: refused in the handshake too.
    auto mixed = with_files(harness::env("EMBER_TEST_OTHER_TLS_DIR"));
    mixed.tls_ca_file = harness::env("EMBER_TEST_TLS_DIR") + "/ca.crt";
    mixed.connect_timeout_s = 2;
    CHECK_THROWS(ember::RequestError, ember::Client::connect(mixed), CHECK_EQ(e.code(), 14));
  });
}

TEST(incomplete_tls_options_are_refused_before_connecting) {
  ember::ConnectOptions options;
  options.tls_ca_file = harness::env("EMBER_TEST_TLS_DIR") + "/ca.crt";
  CHECK_THROWS(ember::Error, ember::Client::connect(options), CHECK(contains(e.what(), "TLS needs all three files")));
  options.tls_cert_file = "/nonexistent.crt";
  options.tls_key_file = "/nonexistent.key";
  CHECK_THROWS(ember::Error, ember::Client::connect(options), CHECK(contains(e.what(), "/nonexistent.crt")));
}
