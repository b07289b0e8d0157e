// The Ember C++ client: Python functions and actors called by their
// importable names, objects put and got, over the client API
// (proto/ember/v1/client_api.proto) of one raylet.
//
//   ember::ConnectOptions options;  // address and token: from the environment or `ember start`
//   options.code_search_path = {"/srv/code"};
//   ember::Client client = ember::Client::connect(options);
//   ember::Value sum = client.call("mypkg.mod:add", {1, 2});          // 3
//   ember::ObjectRef ref = client.submit("mypkg.mod:slow", {"x"});     // at once
//   ember::Value x = client.get(ref, /*timeout_s=*/10.0);
//   ember::Actor counter = client.create_actor("mypkg.mod:Counter", {0});
//   counter.call("inc");
//
// Thread-safe: one client may be used from many threads. Failures throw
// ember::Error subclasses (errors.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ember/errors.h"
#include "ember/value.h"

namespace ember {

struct ConnectOptions {
  // The cluster's GCS, "HOST:PORT" (default: EMBER_ADDRESS, then this machine's latest `ember start`).
  std::string address;
  // The cluster token (default: EMBER_AUTH_TOKEN, then the session directory's token file).
  std::string token;
  // Directories on the cluster's machines put first on the workers' import path for this client's calls.
  std::vector<std::string> code_search_path;
  // The namespace of named actors ("" : a fresh anonymous one).
  std::string ns;
  // Print what the client's tasks print, and warnings (to stdout/stderr).
  bool log_to_driver = true;
  // Mutual TLS (clusters started with --tls): PEM files of the cluster's CA
  // and of a certificate and key it signed. Default: EMBER_TLS_CA,
  // EMBER_TLS_CERT and EMBER_TLS_KEY, then the session directory's tls/
  // files when the cluster was found there; none: plaintext.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Seconds to wait for the cluster when connecting.
  double connect_timeout_s = 30.0;
};

// Ray's task options (unset: Ray's defaults: 1 CPU, 1 return, 3 retries).
struct TaskOptions {
  std::optional<double> num_cpus;
  std::optional<double> num_gpus;
  std::optional<double> memory;  // bytes
  std::map<std::string, double> resources;
  std::optional<std::uint32_t> num_returns;
  std::optional<std::int32_t> max_retries;  // -1: forever
  bool retry_exceptions = false;
  std::string name;    // for errors and logs
  Value::Map kwargs;   // keyword arguments
};

// Ray's actor options.
struct ActorOptions {
  std::string name;                  // "" : unnamed (ends when its handles are gone)
  std::optional<std::string> ns;     // default: the client's namespace
  std::string lifetime;              // "", "non_detached" or "detached" (outlives the client)
  std::int32_t max_restarts = 0;     // -1: forever
  std::int32_t max_task_retries = 0; // -1: forever
  std::uint32_t max_concurrency = 0; // 0: 1 (threads, or coroutines for an async class)
  std::optional<double> num_cpus;    // default 0
  std::optional<double> num_gpus;
  std::optional<double> memory;
  std::map<std::string, double> resources;
  bool get_if_exists = false;
  Value::Map kwargs;                 // the constructor's keyword arguments
};

// One call of a batch (Client::submit_many): a function by name, its arguments and options.
struct TaskCall {
  std::string function;
  Value::Array args;
  TaskOptions options;
};

struct NodeInfo {
  std::string node_id;  // hex
  bool alive = false;
  std::string address;
  int raylet_port = 0;
  bool is_head = false;
  std::map<std::string, double> total;
  std::map<std::string, double> available;
  std::map<std::string, std::string> labels;
};

class Client;
class Session;

// A handle to an actor: call its methods by name. Copies are the same actor;
// an unnamed, non-detached actor ends when the last handle (and its client) is gone.
class Actor {
 public:
  // Call a method and wait for its result (throws RemoteError if it raised).
  Value call(const std::string& method, Value::Array args = {}, const TaskOptions& options = {}) const;
  // Call a method: its ref at once.
  ObjectRef submit(const std::string& method, Value::Array args = {}, const TaskOptions& options = {}) const;
  // All its refs, for num_returns != 1.
  std::vector<ObjectRef> submit_returns(const std::string& method, Value::Array args = {},
                                        const TaskOptions& options = {}) const;
  // Wait until the constructor ran (throws its error if it raised).
  void ready(std::optional<double> timeout_s = std::nullopt) const;

  const std::string& actor_id() const { return actor_id_; }  // 16 raw bytes
  const std::string& class_name() const { return class_name_; }
  const std::string& name() const { return name_; }
  const std::string& ns() const { return ns_; }

 private:
  friend class Session;
  std::shared_ptr<Session> session_;
  std::string actor_id_, class_name_, name_, ns_;
  ObjectRef ready_;  // the creation's return, held while a handle lives
};

class Client {
 public:
  // Connect to a cluster and open a session on one of its raylets
  // (RequestError UNAUTHENTICATED for a wrong token, UNAVAILABLE for no cluster).
  static Client connect(ConnectOptions options = {});

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();  // close()

  // Run a Python function by name ("pkg.module:function") and wait for its result.
  Value call(const std::string& function, Value::Array args = {}, const TaskOptions& options = {});
  // Submit it: its ref at once (the value comes with get()).
  ObjectRef submit(const std::string& function, Value::Array args = {}, const TaskOptions& options = {});
  // All its refs, for num_returns != 1.
  std::vector<ObjectRef> submit_returns(const std::string& function, Value::Array args = {},
                                        const TaskOptions& options = {});

  // Many calls in one request (one round trip: what a loop of submit() costs
  // once per call): each call's refs, in order. Refused whole if one call is
  // bad (the message names its index).
  std::vector<std::vector<ObjectRef>> submit_many(const std::vector<TaskCall>& calls);

  // The value of a ref (RemoteError if it holds an error; GetTimeoutError
  // if not ready within timeout_s).
  Value get(const ObjectRef& ref, std::optional<double> timeout_s = std::nullopt);
  std::vector<Value> get(const std::vector<ObjectRef>& refs, std::optional<double> timeout_s = std::nullopt);
  // Put a value in the cluster (sent in chunks, whatever its size).
  ObjectRef put(const Value& value);
  // Ray's wait: (ready, not ready) once num_returns are ready or timeout_s passes.
  std::pair<std::vector<ObjectRef>, std::vector<ObjectRef>> wait(const std::vector<ObjectRef>& refs,
                                                                 std::uint32_t num_returns = 1,
                                                                 std::optional<double> timeout_s = std::nullopt);

  // Create an actor of a Python class by name ("pkg.module:Class").
  Actor create_actor(const std::string& class_name, Value::Array args = {}, const ActorOptions& options = {});
  // The live actor with this name (created by any client or Python driver); RequestError NOT_FOUND if none.
  Actor get_actor(const std::string& name, std::optional<std::string> ns = std::nullopt);
  // End an actor at once (Ray's kill): its calls fail with ActorDiedError.
  void kill(const Actor& actor, bool no_restart = true);

  std::vector<NodeInfo> nodes();
  std::map<std::string, double> cluster_resources();    // of the alive nodes
  std::map<std::string, double> available_resources();  // of the alive nodes

  const std::string& session_id() const;  // raw bytes
  const std::string& ns() const;          // the session's namespace
  // The raylet this client talks to, "HOST:PORT".
  const std::string& raylet_address() const;

  // End the session: everything it holds is released, its non-detached
  // actors end. Refs and actors kept after it hold nothing.
  void close();

 private:
  explicit Client(std::shared_ptr<Session> session);
  std::shared_ptr<Session> session_;
};

}  // namespace ember
