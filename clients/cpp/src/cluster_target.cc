#include "cluster_target.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace ember {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

fs::path session_root() {
  std::string root = env("EMBER_SESSION_ROOT");
  return root.empty() ? fs::path("/tmp/ember-sessions") : fs::path(root);
}

bool read_file(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  out = s.str();
  return true;
}

std::string trimmed(std::string s) {
  auto end = s.find_last_not_of(" \t\r\n");
  return end == std::string::npos ? "" : s.substr(0, end + 1);
}

// The addresses a session's cluster.json says its GCS serves (comma-separated).
std::string gcs_address_of(const fs::path& session_dir) {
  std::string json;
  if (!read_file(session_dir / "cluster.json", json)) return "";
  std::smatch m;
  static const std::regex key("\"gcs_address\"\\s*:\\s*\"([^\"]*)\"");
  return std::regex_search(json, m, key) ? m[1].str() : "";
}

bool serves(const std::string& addresses, const std::string& address) {
  std::stringstream s(addresses);
  std::string one;
  while (std::getline(s, one, ',')) {
    if (one == address) return true;
  }
  return false;
}

// The newest session on this machine whose cluster serves `address`.
fs::path session_for(const std::string& address) {
  fs::path best;
  fs::file_time_type best_time;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(session_root(), ec)) {
    const fs::path dir = entry.path();
    if (dir.filename().string().rfind("session_", 0) != 0 || dir.filename() == "session_latest") continue;
    if (!serves(gcs_address_of(dir), address) || !fs::exists(dir / "token")) continue;
    auto t = fs::last_write_time(dir / "cluster.json", ec);
    if (ec) continue;
    if (best.empty() || t > best_time) {
      best = dir;
      best_time = t;
    }
  }
  return best;
}

std::string must_read(const std::string& path, const char* what) {
  std::string out;
  if (!read_file(path, out)) throw Error(std::string("cannot read the TLS ") + what + " file " + path);
  return out;
}

}  // namespace

ClusterTarget resolve_target(const ConnectOptions& options) {
  ClusterTarget target;
  target.address = !options.address.empty() ? options.address : env("EMBER_ADDRESS");
  fs::path session_dir;
  if (target.address.empty() || target.address == "auto") {
    fs::path latest = session_root() / "session_latest";
    std::string served = gcs_address_of(latest);
    if (served.empty()) {
      throw Error("no cluster address given (ConnectOptions::address, EMBER_ADDRESS) and no `ember start` on this "
                  "machine (" + (latest / "cluster.json").string() + ")");
    }
    target.address = served.substr(0, served.find(','));
    session_dir = latest;
  }
  target.token = !options.token.empty() ? options.token : env("EMBER_AUTH_TOKEN");
  if (target.token.empty() || options.tls_ca_file.empty()) {
    if (session_dir.empty()) session_dir = session_for(target.address);
  }
  if (target.token.empty()) {
    std::string token;
    if (!session_dir.empty() && read_file(session_dir / "token", token)) target.token = trimmed(token);
  }
  if (target.token.empty()) {
    throw Error("no token for the cluster at " + target.address + ": give ConnectOptions::token, or set "
                "EMBER_AUTH_TOKEN (the head's session directory has it in its `token` file)");
  }
  // TLS files: the options, else the environment (as Ray's RAY_TLS_*), else
  // the session's own node files (a client on a node of the cluster).
  std::string ca = options.tls_ca_file, cert = options.tls_cert_file, key = options.tls_key_file;
  if (ca.empty() && cert.empty() && key.empty()) {
    ca = env("EMBER_TLS_CA");
    cert = env("EMBER_TLS_CERT");
    key = env("EMBER_TLS_KEY");
  }
  if (ca.empty() && cert.empty() && key.empty() && !session_dir.empty()) {
    fs::path tls = session_dir / "tls";
    if (fs::is_regular_file(tls / "ca.crt") && fs::is_regular_file(tls / "node.crt") &&
        fs::is_regular_file(tls / "node.key")) {
      ca = (tls / "ca.crt").string();
      cert = (tls / "node.crt").string();
      key = (tls / "node.key").string();
    }
  }
  if (!ca.empty() || !cert.empty() || !key.empty()) {
    if (ca.empty() || cert.empty() || key.empty()) {
      throw Error("TLS needs all three files: the cluster's CA (tls_ca_file / EMBER_TLS_CA), a certificate it "
                  "signed (tls_cert_file / EMBER_TLS_CERT) and its key (tls_key_file / EMBER_TLS_KEY)");
    }
    target.tls_ca = must_read(ca, "CA");
    target.tls_cert = must_read(cert, "certificate");
    target.tls_key = must_read(key, "key");
  }
  return target;
}

}  // namespace ember
