// The client: a session (Connect stream) on one raylet, the calls that name
// it, and a thread that releases the refs the program dropped, in batches.

#include "ember/client.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <unordered_map>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include "cluster_target.h"
#include "ember/v1/client_api.grpc.pb.h"
#include "ember/v1/client_calls.grpc.pb.h"
#include "ember/v1/gcs.grpc.pb.h"
#include "msgpack_codec.h"
#include "refs.h"

namespace ember {

namespace api = ::ember::v1;

namespace {

const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK: return "OK";
    case grpc::CANCELLED: return "CANCELLED";
    case grpc::UNKNOWN: return "UNKNOWN";
    case grpc::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND: return "NOT_FOUND";
    case grpc::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::ABORTED: return "ABORTED";
    case grpc::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::INTERNAL: return "INTERNAL";
    case grpc::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::DATA_LOSS: return "DATA_LOSS";
    case grpc::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "STATUS";
  }
}

[[noreturn]] void throw_status(const grpc::Status& status) {
  int code = static_cast<int>(status.error_code());
  if (status.error_code() == grpc::DEADLINE_EXCEEDED) {
    throw GetTimeoutError(code, code_name(status.error_code()), status.error_message());
  }
  throw RequestError(code, code_name(status.error_code()), status.error_message());
}

std::exception_ptr status_error(const grpc::Status& status) {
  try {
    throw_status(status);
  } catch (...) {
    return std::current_exception();
  }
}

void check(const grpc::Status& status) {
  if (!status.ok()) throw_status(status);
}

RemoteError remote_error(const api::Error& e) {
  return RemoteError(e.kind() == api::Error::SYSTEM ? RemoteError::Kind::System : RemoteError::Kind::Code, e.type(),
                     e.message(), e.traceback(), e.function());
}

std::shared_ptr<grpc::ChannelCredentials> credentials_for(const ClusterTarget& target) {
  if (target.tls_ca.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = target.tls_ca;
  ssl.pem_private_key = target.tls_key;
  ssl.pem_cert_chain = target.tls_cert;
  return grpc::SslCredentials(ssl);
}

std::shared_ptr<grpc::Channel> open_channel(const std::string& address, const ClusterTarget& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, credentials_for(target), args);
}

void set_options(api::TaskOptions* out, const TaskOptions& o) {
  if (o.num_cpus) out->set_num_cpus(*o.num_cpus);
  if (o.num_gpus) out->set_num_gpus(*o.num_gpus);
  if (o.memory) out->set_memory(*o.memory);
  for (const auto& [k, v] : o.resources) (*out->mutable_resources())[k] = v;
  if (o.num_returns) out->set_num_returns(*o.num_returns);
  if (o.max_retries) out->set_max_retries(*o.max_retries);
  out->set_retry_exceptions(o.retry_exceptions);
  out->set_name(o.name);
}

}  // namespace

// One session with one raylet: shared by the Client and the handles and refs made from it.
class Session {
 public:
  Session(ClusterTarget target, const ConnectOptions& options) : target_(std::move(target)) {
    std::random_device seed;
    random_.seed((static_cast<std::uint64_t>(seed()) << 32) ^ seed() ^ static_cast<std::uint64_t>(::getpid()));
    auto deadline = std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<long>(options.connect_timeout_s * 1000));
    find_raylet(deadline);
    open(options);
    releaser_ = std::thread([this] { release_loop(); });
  }

  ~Session() { close(); }

  void close() {
    std::lock_guard<std::mutex> lock(close_mutex_);
    if (closed_) return;
    closed_ = true;
    tracker_->stop();  // (the releaser sends what waits, then ends)
    if (releaser_.joinable()) releaser_.join();
    {
      std::lock_guard<std::mutex> lock(runs_mutex_);
      if (runs_ && !runs_broken_) runs_->WritesDone();
      if (runs_context_) runs_context_->TryCancel();
    }
    if (runs_reader_.joinable()) runs_reader_.join();
    events_context_.TryCancel();
    if (events_thread_.joinable()) events_thread_.join();
  }

  void check_open() const {
    if (closed_) throw SessionError("the client is closed");
    if (lost_) {
      std::lock_guard<std::mutex> lock(lost_mutex_);
      throw SessionError("lost the session with the cluster (" + lost_why_ + ")");
    }
  }

  void prepare(grpc::ClientContext& context) const { context.AddMetadata("authorization", "Bearer " + target_.token); }

  ObjectRef make_ref(const std::string& id) { return tracker_->make(id); }

  std::string encode_args(const Value::Array& args) const { return msgpack::encode(Value(args)); }
  std::string encode_kwargs(const Value::Map& kwargs) const {
    return kwargs.empty() ? std::string() : msgpack::encode(Value(kwargs));
  }

  Value decode(const std::string& document) {
    return msgpack::decode(document, [this](const std::string& id) { return make_ref(id); });
  }

  // A call with a task id of our own, so its return ids are known before the reply.
  std::vector<std::string> build_call(api::Call* call, const Value::Array& args, const TaskOptions& options,
                                      bool is_method) {
    call->set_args(encode_args(args));
    call->set_kwargs(encode_kwargs(options.kwargs));
    set_options(call->mutable_options(), options);
    std::string task_id(16, '\0');
    {
      std::lock_guard<std::mutex> lock(random_mutex_);
      for (int i = 0; i < 16; i += 8) {
        std::uint64_t r = random_();
        std::memcpy(&task_id[i], &r, 8);
      }
    }
    task_id[15] = static_cast<char>(is_method ? (task_id[15] | 1) : (task_id[15] & ~1));
    call->set_task_id(task_id);
    std::vector<std::string> returns;
    std::uint32_t n = options.num_returns.value_or(1);
    for (std::uint32_t i = 1; i <= n; ++i) {
      std::string id = task_id;
      for (int b = 3; b >= 0; --b) id.push_back(static_cast<char>((i >> (8 * b)) & 0xff));
      returns.push_back(std::move(id));
    }
    return returns;
  }

  std::vector<ObjectRef> submit(api::Call call) {
    api::SubmitRequest request;
    *request.add_calls() = std::move(call);
    return submit(request).at(0);
  }

  std::vector<std::vector<ObjectRef>> submit(api::SubmitRequest& request) {
    check_open();
    request.set_session_id(session_id_);
    api::SubmitReply reply;
    grpc::ClientContext context;
    prepare(context);
    check(stub_->Submit(&context, request, &reply));
    std::vector<std::vector<ObjectRef>> refs;
    for (const auto& returns : reply.refs()) {
      refs.emplace_back();
      for (const std::string& id : returns.object_ids()) refs.back().push_back(make_ref(id));
    }
    return refs;
  }

  // Submit and get in one round trip: a tagged Run on the session's Runs
  // stream (one message each way, no new gRPC call per call); the raylet
  // lets the returns go after (`release`).
  std::vector<Value> run(api::Call call, std::size_t returns) {
    check_open();
    api::TaggedRun tagged;
    api::RunRequest* request = tagged.mutable_run();
    request->set_session_id(session_id_);
    *request->add_calls() = std::move(call);
    request->set_release(true);
    auto pending = std::make_shared<PendingRun>();
    pending->documents.resize(returns);
    pending->errors.resize(returns);
    std::future<void> done = pending->done.get_future();
    {
      std::lock_guard<std::mutex> lock(runs_mutex_);
      open_runs();
      tagged.set_tag(next_tag_++);
      running_[tagged.tag()] = pending;
      runs_->Write(tagged);  // (a broken stream: the reader fails every pending run)
    }
    done.get();  // (throws the Run's status)
    std::vector<Value> values;
    for (std::size_t i = 0; i < returns; ++i) {
      if (pending->errors[i]) throw remote_error(*pending->errors[i]);
      values.push_back(decode(pending->documents[i]));
    }
    return values;
  }

  std::vector<Value> get(const std::vector<ObjectRef>& refs, std::optional<double> timeout_s) {
    check_open();
    api::GetRequest request;
    request.set_session_id(session_id_);
    for (const ObjectRef& ref : refs) {
      if (!ref.valid()) throw Error("get() of an empty ObjectRef (default-constructed)");
      request.add_object_ids(ref.id());
    }
    if (timeout_s) request.set_timeout_s(*timeout_s);
    grpc::ClientContext context;
    prepare(context);
    return collect(stub_->Get(&context, request), refs.size());
  }

  ObjectRef put(const Value& value) {
    check_open();
    std::string document = msgpack::encode(value);
    grpc::ClientContext context;
    prepare(context);
    api::PutReply reply;
    auto writer = stub_->Put(&context, &reply);
    std::size_t chunk = chunk_bytes_ ? chunk_bytes_ : (1u << 20);
    api::PutRequest piece;
    for (std::size_t start = 0; start == 0 || start < document.size(); start += chunk) {
      piece.set_session_id(start == 0 ? session_id_ : std::string());
      piece.set_data(document.substr(start, chunk));
      if (!writer->Write(piece)) break;  // (the server ended the call: Finish says why)
      if (document.empty()) break;
    }
    writer->WritesDone();
    check(writer->Finish());
    return make_ref(reply.object_id());
  }

  std::pair<std::vector<ObjectRef>, std::vector<ObjectRef>> wait(const std::vector<ObjectRef>& refs,
                                                                 std::uint32_t num_returns,
                                                                 std::optional<double> timeout_s) {
    check_open();
    api::WaitRequest request;
    request.set_session_id(session_id_);
    for (const ObjectRef& ref : refs) request.add_object_ids(ref.id());
    request.set_num_returns(num_returns);
    if (timeout_s) request.set_timeout_s(*timeout_s);
    api::WaitReply reply;
    grpc::ClientContext context;
    prepare(context);
    check(stub_->Wait(&context, request, &reply));
    std::vector<bool> ready(refs.size(), false);
    for (std::uint32_t i : reply.ready()) {
      if (i < ready.size()) ready[i] = true;
    }
    std::pair<std::vector<ObjectRef>, std::vector<ObjectRef>> out;
    for (std::size_t i = 0; i < refs.size(); ++i) (ready[i] ? out.first : out.second).push_back(refs[i]);
    return out;
  }

  template <typename Request, typename Reply, typename Method>
  Reply unary(Method method, Request& request) {
    check_open();
    request.set_session_id(session_id_);
    Reply reply;
    grpc::ClientContext context;
    prepare(context);
    check(((*stub_).*method)(&context, request, &reply));
    return reply;
  }

  // A handle to the actor a reply names; the session holds its ready object while a handle lives.
  static Actor handle(const std::shared_ptr<Session>& session, const api::ActorRef& ref) {
    Actor actor;
    actor.session_ = session;
    actor.actor_id_ = ref.actor_id();
    actor.class_name_ = ref.class_name();
    actor.name_ = ref.name();
    actor.ns_ = ref.namespace_();
    if (!ref.ready_object_id().empty()) actor.ready_ = session->make_ref(ref.ready_object_id());
    return actor;
  }

  const std::string& session_id() const { return session_id_; }
  const std::string& ns() const { return namespace_; }
  const std::string& raylet_address() const { return raylet_address_; }

 private:
  void find_raylet(std::chrono::system_clock::time_point deadline) {
    auto gcs = api::Gcs::NewStub(open_channel(target_.address, target_));
    api::GetAllNodesRequest request;
    api::GetAllNodesReply reply;
    grpc::ClientContext context;
    prepare(context);
    context.set_deadline(deadline);
    context.set_wait_for_ready(true);  // (a cluster still starting: wait for it, up to the deadline)
    grpc::Status status = gcs->GetAllNodes(&context, request, &reply);
    if (!status.ok()) {
      if (status.error_code() == grpc::DEADLINE_EXCEEDED) {
        throw RequestError(grpc::UNAVAILABLE, "UNAVAILABLE", "no cluster answered at " + target_.address + " within "
                           "the connect timeout (" + (target_.tls_ca.empty()
                           ? "if the cluster uses TLS, give its CA and a certificate and key it signed"
                           : "with TLS: are the CA and the certificate the cluster's?") + ")");
      }
      throw_status(status);
    }
    std::string host = target_.address.substr(0, target_.address.rfind(':'));
    const api::NodeInfo* chosen = nullptr;
    auto pick = [&](auto good) {
      if (chosen) return;
      for (const auto& n : reply.nodes()) {
        if (n.alive() && good(n)) {
          chosen = &n;
          return;
        }
      }
    };
    pick([&](const api::NodeInfo& n) { return n.node_address() == host && n.is_head(); });
    pick([&](const api::NodeInfo& n) { return n.node_address() == host; });
    pick([&](const api::NodeInfo& n) { return n.is_head(); });
    pick([&](const api::NodeInfo&) { return true; });
    if (!chosen) throw SessionError("the cluster at " + target_.address + " has no alive node");
    raylet_address_ = chosen->node_address() + ":" + std::to_string(chosen->raylet_port());
  }

  void open(const ConnectOptions& options) {
    auto channel = open_channel(raylet_address_, target_);
    stub_ = api::ClientApi::NewStub(channel);
    calls_stub_ = api::ClientCalls::NewStub(channel);
    api::ConnectRequest request;
    request.set_namespace_(options.ns);
    for (const auto& dir : options.code_search_path) request.add_code_search_path(dir);
    request.set_language("cpp");
    request.set_pid(::getpid());
    prepare(events_context_);
    events_ = stub_->Connect(&events_context_, request);
    api::SessionEvent first;
    if (!events_->Read(&first)) {
      grpc::Status status = events_->Finish();
      if (status.ok()) throw SessionError("the raylet ended the session before it began");
      throw_status(status);
    }
    if (!first.has_connected()) throw SessionError("the raylet's first session event was not `connected`");
    const api::Connected& c = first.connected();
    session_id_ = c.session_id();
    namespace_ = c.namespace_();
    chunk_bytes_ = c.chunk_bytes();
    events_thread_ = std::thread([this, log = options.log_to_driver] { read_events(log); });
  }

  void read_events(bool log) {
    api::SessionEvent event;
    while (events_->Read(&event)) {
      if (!log) continue;
      if (event.has_output()) {
        const auto& o = event.output();
        std::ostream& out = o.is_stderr() ? std::cerr : std::cout;
        for (const auto& line : o.lines()) out << "(" << o.task_name() << " pid=" << o.pid() << ") " << line << "\n";
        out.flush();
      } else if (!event.warning().empty()) {
        std::cerr << "(ember) warning: " << event.warning() << std::endl;
      }
    }
    grpc::Status status = events_->Finish();
    if (!closed_) {
      std::lock_guard<std::mutex> lock(lost_mutex_);
      lost_why_ = status.ok() ? "the raylet ended the session"
                              : std::string(code_name(status.error_code())) + ": " + status.error_message();
      lost_ = true;
    }
  }

  struct PendingRun {
    std::vector<std::string> documents;
    std::vector<std::optional<api::Error>> errors;
    std::promise<void> done;
  };

  // The Runs stream and its reader, opened at the first call (again after a break). Under runs_mutex_.
  void open_runs() {
    if (runs_ && !runs_broken_) return;
    if (runs_reader_.joinable()) runs_reader_.join();
    runs_context_ = std::make_unique<grpc::ClientContext>();
    prepare(*runs_context_);
    runs_ = calls_stub_->Runs(runs_context_.get());
    runs_broken_ = false;
    runs_reader_ = std::thread([this, stream = runs_.get()] { read_runs(stream); });
  }

  void read_runs(grpc::ClientReaderWriter<api::TaggedRun, api::TaggedReply>* stream) {
    api::TaggedReply tagged;
    while (stream->Read(&tagged)) {
      std::shared_ptr<PendingRun> pending;
      {
        std::lock_guard<std::mutex> lock(runs_mutex_);
        auto it = running_.find(tagged.tag());
        if (it == running_.end()) continue;
        pending = it->second;
        if (tagged.done()) running_.erase(it);
      }
      if (!tagged.done()) {
        const api::GetReply& reply = tagged.reply();
        if (reply.index() >= pending->documents.size()) continue;
        if (reply.has_error()) pending->errors[reply.index()] = reply.error();
        else pending->documents[reply.index()] += reply.data();
      } else if (tagged.code() != 0) {
        pending->done.set_exception(status_error(grpc::Status(static_cast<grpc::StatusCode>(tagged.code()),
                                                              tagged.message())));
      } else {
        pending->done.set_value();
      }
    }
    grpc::Status status = stream->Finish();
    std::lock_guard<std::mutex> lock(runs_mutex_);
    runs_broken_ = true;
    for (auto& [tag, pending] : running_) {
      pending->done.set_exception(status.ok() ? std::make_exception_ptr(SessionError("the raylet ended the calls "
                                                                                   "stream"))
                                              : status_error(status));
    }
    running_.clear();
  }

  void release_loop() {
    for (;;) {
      std::vector<std::string> ids = tracker_->next_batch();
      if (ids.empty()) return;
      if (lost_) continue;
      api::ReleaseRequest request;
      request.set_session_id(session_id_);
      for (auto& id : ids) request.add_object_ids(std::move(id));
      api::ReleaseReply reply;
      grpc::ClientContext context;
      prepare(context);
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      stub_->Release(&context, request, &reply);  // (a failure: the session is gone, and so are its refs)
    }
  }

  // The values a Get or Run streams (throws the first error, in order).
  std::vector<Value> collect(std::unique_ptr<grpc::ClientReader<api::GetReply>> reader, std::size_t count) {
    std::vector<std::string> documents(count);
    std::vector<std::optional<api::Error>> errors(count);
    api::GetReply reply;
    while (reader->Read(&reply)) {
      if (reply.index() >= count) continue;
      if (reply.has_error()) {
        errors[reply.index()] = reply.error();
      } else if (documents[reply.index()].empty()) {
        documents[reply.index()].swap(*reply.mutable_data());
      } else {
        documents[reply.index()] += reply.data();
      }
    }
    check(reader->Finish());
    std::vector<Value> values;
    values.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      if (errors[i]) throw remote_error(*errors[i]);
      values.push_back(decode(documents[i]));
    }
    return values;
  }

  ClusterTarget target_;
  std::unique_ptr<api::ClientApi::Stub> stub_;
  std::unique_ptr<api::ClientCalls::Stub> calls_stub_;
  std::mutex runs_mutex_;
  std::unique_ptr<grpc::ClientContext> runs_context_;
  std::unique_ptr<grpc::ClientReaderWriter<api::TaggedRun, api::TaggedReply>> runs_;
  bool runs_broken_ = false;
  std::thread runs_reader_;
  std::uint64_t next_tag_ = 1;
  std::unordered_map<std::uint64_t, std::shared_ptr<PendingRun>> running_;
  std::string raylet_address_, session_id_, namespace_;
  std::uint32_t chunk_bytes_ = 0;
  std::shared_ptr<RefTracker> tracker_ = std::make_shared<RefTracker>();
  grpc::ClientContext events_context_;
  std::unique_ptr<grpc::ClientReader<api::SessionEvent>> events_;
  std::thread events_thread_, releaser_;
  std::mutex close_mutex_, random_mutex_;
  mutable std::mutex lost_mutex_;
  std::atomic<bool> closed_{false}, lost_{false};
  std::string lost_why_;
  std::mt19937_64 random_;
};

// ---- Client -------------------------------------------------------------------

Client Client::connect(ConnectOptions options) {
  return Client(std::make_shared<Session>(resolve_target(options), options));
}

Client::Client(std::shared_ptr<Session> session) : session_(std::move(session)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() {
  if (session_) session_->close();
}

void Client::close() {
  if (session_) session_->close();
}

Value Client::call(const std::string& function, Value::Array args, const TaskOptions& options) {
  api::Call call;
  call.set_function(function);
  auto returns = session_->build_call(&call, args, options, false);
  auto values = session_->run(std::move(call), returns.size());
  if (options.num_returns.value_or(1) == 1) return std::move(values.at(0));
  return Value(std::move(values));
}

ObjectRef Client::submit(const std::string& function, Value::Array args, const TaskOptions& options) {
  if (options.num_returns.value_or(1) != 1) throw Error("submit() is for one return: use submit_returns()");
  return submit_returns(function, std::move(args), options).at(0);
}

std::vector<ObjectRef> Client::submit_returns(const std::string& function, Value::Array args,
                                              const TaskOptions& options) {
  api::Call call;
  call.set_function(function);
  session_->build_call(&call, args, options, false);
  return session_->submit(std::move(call));
}

std::vector<std::vector<ObjectRef>> Client::submit_many(const std::vector<TaskCall>& calls) {
  api::SubmitRequest request;
  for (const TaskCall& c : calls) {
    api::Call* call = request.add_calls();
    call->set_function(c.function);
    session_->build_call(call, c.args, c.options, false);
  }
  return session_->submit(request);
}

Value Client::get(const ObjectRef& ref, std::optional<double> timeout_s) {
  return std::move(session_->get({ref}, timeout_s).at(0));
}

std::vector<Value> Client::get(const std::vector<ObjectRef>& refs, std::optional<double> timeout_s) {
  return session_->get(refs, timeout_s);
}

ObjectRef Client::put(const Value& value) { return session_->put(value); }

std::pair<std::vector<ObjectRef>, std::vector<ObjectRef>> Client::wait(const std::vector<ObjectRef>& refs,
                                                                       std::uint32_t num_returns,
                                                                       std::optional<double> timeout_s) {
  return session_->wait(refs, num_returns, timeout_s);
}

Actor Client::create_actor(const std::string& class_name, Value::Array args, const ActorOptions& o) {
  api::CreateActorRequest request;
  request.set_class_name(class_name);
  request.set_args(session_->encode_args(args));
  request.set_kwargs(session_->encode_kwargs(o.kwargs));
  api::ActorOptions* out = request.mutable_options();
  if (o.num_cpus) out->set_num_cpus(*o.num_cpus);
  if (o.num_gpus) out->set_num_gpus(*o.num_gpus);
  if (o.memory) out->set_memory(*o.memory);
  for (const auto& [k, v] : o.resources) (*out->mutable_resources())[k] = v;
  out->set_name(o.name);
  if (o.ns) out->set_namespace_(*o.ns);
  out->set_lifetime(o.lifetime);
  out->set_max_restarts(o.max_restarts);
  out->set_max_task_retries(o.max_task_retries);
  out->set_max_concurrency(o.max_concurrency);
  out->set_get_if_exists(o.get_if_exists);
  auto reply = session_->unary<api::CreateActorRequest, api::CreateActorReply>(&api::ClientApi::Stub::CreateActor,
                                                                               request);
  return Session::handle(session_, reply.actor());
}

Actor Client::get_actor(const std::string& name, std::optional<std::string> ns) {
  api::LookupActorRequest request;
  request.set_name(name);
  if (ns) request.set_namespace_(*ns);
  auto reply = session_->unary<api::LookupActorRequest, api::LookupActorReply>(&api::ClientApi::Stub::LookupActor,
                                                                               request);
  return Session::handle(session_, reply.actor());
}

void Client::kill(const Actor& actor, bool no_restart) {
  api::KillActorRequest request;
  request.set_actor_id(actor.actor_id());
  request.set_no_restart(no_restart);
  session_->unary<api::KillActorRequest, api::KillActorReply>(&api::ClientApi::Stub::KillActor, request);
}

std::vector<NodeInfo> Client::nodes() {
  api::NodesRequest request;
  auto reply = session_->unary<api::NodesRequest, api::NodesReply>(&api::ClientApi::Stub::Nodes, request);
  std::vector<NodeInfo> out;
  static const char digits[] = "0123456789abcdef";
  for (const auto& n : reply.nodes()) {
    NodeInfo info;
    for (unsigned char c : n.node_id()) {
      info.node_id += digits[c >> 4];
      info.node_id += digits[c & 15];
    }
    info.alive = n.alive();
    info.address = n.address();
    info.raylet_port = n.raylet_port();
    info.is_head = n.is_head();
    info.total.insert(n.total().begin(), n.total().end());
    info.available.insert(n.available().begin(), n.available().end());
    info.labels.insert(n.labels().begin(), n.labels().end());
    out.push_back(std::move(info));
  }
  return out;
}

std::map<std::string, double> Client::cluster_resources() {
  std::map<std::string, double> sum;
  for (const auto& n : nodes()) {
    if (!n.alive) continue;
    for (const auto& [k, v] : n.total) sum[k] += v;
  }
  return sum;
}

std::map<std::string, double> Client::available_resources() {
  std::map<std::string, double> sum;
  for (const auto& n : nodes()) {
    if (!n.alive) continue;
    for (const auto& [k, v] : n.available) sum[k] += v;
  }
  return sum;
}

const std::string& Client::session_id() const { return session_->session_id(); }
const std::string& Client::ns() const { return session_->ns(); }
const std::string& Client::raylet_address() const { return session_->raylet_address(); }

// ---- Actor --------------------------------------------------------------------

Value Actor::call(const std::string& method, Value::Array args, const TaskOptions& options) const {
  api::Call call;
  call.mutable_method()->set_actor_id(actor_id_);
  call.mutable_method()->set_method(method);
  auto returns = session_->build_call(&call, args, options, true);
  auto values = session_->run(std::move(call), returns.size());
  if (options.num_returns.value_or(1) == 1) return std::move(values.at(0));
  return Value(std::move(values));
}

ObjectRef Actor::submit(const std::string& method, Value::Array args, const TaskOptions& options) const {
  if (options.num_returns.value_or(1) != 1) throw Error("submit() is for one return: use submit_returns()");
  return submit_returns(method, std::move(args), options).at(0);
}

std::vector<ObjectRef> Actor::submit_returns(const std::string& method, Value::Array args,
                                             const TaskOptions& options) const {
  api::Call call;
  call.mutable_method()->set_actor_id(actor_id_);
  call.mutable_method()->set_method(method);
  session_->build_call(&call, args, options, true);
  return session_->submit(std::move(call));
}

void Actor::ready(std::optional<double> timeout_s) const {
  if (ready_.valid()) session_->get({ready_}, timeout_s);
}

}  // namespace ember
