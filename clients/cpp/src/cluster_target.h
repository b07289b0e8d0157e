// Finding the cluster: its address, token and TLS files from the options,
// then EMBER_ADDRESS / EMBER_AUTH_TOKEN / EMBER_TLS_*, then this machine's
// `ember start` sessions (as a Python driver's init(address="auto")).
#pragma once

#include <string>

#include "ember/client.h"

namespace ember {

struct ClusterTarget {
  std::string address;  // the GCS, HOST:PORT
  std::string token;
  std::string tls_ca, tls_cert, tls_key;  // PEM contents; all empty: plaintext
};

// Throws Error saying what is missing.
ClusterTarget resolve_target(const ConnectOptions& options);

}  // namespace ember
