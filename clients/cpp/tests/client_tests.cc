// The C++ client against a real cluster (`ember start --head`, started by
// tests/test_cpp_client.py), with Python drivers of the same cluster for
// interop both ways. Needs EMBER_ADDRESS, EMBER_AUTH_TOKEN, EMBER_TEST_CODE
// (tests/polyglot_code), EMBER_PYTHON; the cluster's max_value_bytes is 8 MiB.

#include <cstdlib>
#include <cstring>
#include <thread>

#include "ember/client.h"
#include "harness.h"

using ember::Bytes;
using ember::Value;

namespace {

ember::Client connect(const std::string& ns = "interop") {
  ember::ConnectOptions options;
  options.code_search_path = {harness::env("EMBER_TEST_CODE")};
  options.ns = ns;
  return ember::Client::connect(options);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(call_runs_a_python_function_by_name) {
  auto client = connect();
  CHECK_EQ(client.call("polyglot_fns:add", {2, 3}).as_int(), 5);
  CHECK_EQ(client.call("polyglot_fns:decorated_fn", {4}).as_int(), 40);
  CHECK_EQ(client.call("polyglot_fns:add", {"con", "cat"}).as_string(), "concat");
}

TEST(values_arrive_in_python_as_its_natural_types_and_come_back) {
  auto client = connect();
  Value sent = Value::Array{Bytes{0, 255}, Value::Map{{"k", Value::Array{1, 2.5, nullptr, true}}}, "text",
                            INT64_MIN};
  Value got = client.call("polyglot_fns:echo", sent.as_array());
  CHECK_EQ(got["types"], (Value::Array{"bytes", "dict", "str", "int"}));
  CHECK_EQ(got["args"], sent);
  CHECK_EQ(got["args"][3].as_int(), INT64_MIN);
}

TEST(submit_returns_refs_at_once_get_kwargs_and_num_returns) {
  auto client = connect();
  std::vector<ember::ObjectRef> refs;
  for (int i = 1; i <= 3; ++i) refs.push_back(client.submit("polyglot_fns:add", {i, 10}));
  auto values = client.get(refs, 60.0);
  CHECK_EQ(values.size(), 3u);
  CHECK_EQ(values[2].as_int(), 13);
  ember::TaskOptions two;
  two.num_returns = 2;
  auto pair = client.submit_returns("polyglot_fns:pair", {7}, two);
  CHECK_EQ(pair.size(), 2u);
  CHECK_EQ(client.get(pair[1]).as_int(), -7);
  CHECK_EQ(client.call("polyglot_fns:pair", {8}, two), (Value::Array{8, -8}));
  ember::TaskOptions with_kwargs;
  with_kwargs.kwargs = {{"flag", true}};
  with_kwargs.num_cpus = 0.5;
  with_kwargs.max_retries = 0;
  CHECK_EQ(client.get(client.submit("polyglot_fns:echo", {}, with_kwargs))["kwargs"], (Value::Map{{"flag", true}}));
}

TEST(submit_many_sends_a_batch_in_one_request_refused_whole_if_one_call_is_bad) {
  auto client = connect();
  std::vector<ember::TaskCall> calls;
  for (int i = 0; i < 200; ++i) calls.push_back({"polyglot_fns:add", {i, 1}, {}});
  calls.push_back({"polyglot_fns:pair", {3}, [] {
    ember::TaskOptions o;
    o.num_returns = 2;
    return o;
  }()});
  auto refs = client.submit_many(calls);
  CHECK_EQ(refs.size(), 201u);
  CHECK_EQ(refs[199].size(), 1u);
  CHECK_EQ(client.get(refs[199][0]).as_int(), 200);
  CHECK_EQ(client.get(refs[200][1]).as_int(), -3);
  calls[5].function = "not a name";
  CHECK_THROWS(ember::RequestError, client.submit_many(calls), {
    CHECK_EQ(e.code(), 3);
    CHECK(contains(e.details(), "call 5"));
  });
}

TEST(a_python_exception_is_a_typed_remote_error_with_the_traceback) {
  auto client = connect();
  CHECK_THROWS(ember::RemoteError, client.call("polyglot_fns:fail", {"bad input 7"}), {
    CHECK(e.kind() == ember::RemoteError::Kind::Code);
    CHECK_EQ(e.type(), "ValueError");
    CHECK_EQ(e.message(), "bad input 7");
    CHECK(contains(e.traceback(), "polyglot_fns.py"));
    CHECK(contains(e.traceback(), "raise ValueError(message)"));
  });
  // The error is a value: a ref holding it throws at get(), and the client goes on.
  ember::ObjectRef failed = client.submit("polyglot_fns:fail", {"later"});
  CHECK_THROWS(ember::RemoteError, client.get(failed), CHECK_EQ(e.message(), "later"));
  CHECK_THROWS(ember::RemoteError, client.call("no_such_module:fn"), {
    CHECK_EQ(e.type(), "ImportError");
    CHECK(contains(e.message(), "code search path"));
  });
  CHECK_THROWS(ember::RemoteError, client.call("polyglot_fns:no_such_function"), CHECK_EQ(e.type(), "ImportError"));
  // A result with no neutral encoding fails naming its type.
  CHECK_THROWS(ember::RemoteError, client.call("polyglot_fns:unsendable"), {
    CHECK_EQ(e.type(), "TypeError");
    CHECK(contains(e.message(), "has no language-neutral encoding"));
    CHECK(contains(e.message(), "object"));
  });
  CHECK_EQ(client.call("polyglot_fns:add", {1, 1}).as_int(), 2);
}

TEST(bad_input_is_refused_with_what_to_fix_and_the_client_goes_on) {
  auto client = connect();
  CHECK_THROWS(ember::RequestError, client.call("not a name"), {
    CHECK_EQ(e.code(), 3);  // INVALID_ARGUMENT
    CHECK(contains(e.details(), "is not an importable name"));
  });
  CHECK_THROWS(ember::RequestError, client.submit("polyglot_fns:add", {1}, [] {
    ember::TaskOptions o;
    o.num_cpus = -1;
    return o;
  }()), CHECK_EQ(e.code(), 3));
  CHECK_THROWS(ember::RequestError, client.create_actor("polyglot_fns"), CHECK_EQ(e.code(), 3));
  // A ref this session does not hold (another client's): NOT_FOUND.
  auto other = connect();
  ember::ObjectRef theirs = other.put(1);
  CHECK_THROWS(ember::RequestError, client.get(theirs), {
    CHECK_EQ(e.code(), 5);
    CHECK(contains(e.details(), "not held by this session"));
  });
  CHECK_THROWS(ember::RequestError, client.call("polyglot_fns:add", {theirs, 1}), CHECK_EQ(e.code(), 5));
  // Past max_value_bytes (8 MiB on the test cluster): RESOURCE_EXHAUSTED, the session goes on.
  CHECK_THROWS(ember::RequestError, client.put(Bytes(9 << 20, 1)), {
    CHECK_EQ(e.code(), 8);
    CHECK(contains(e.details(), "max_value_bytes"));
  });
  // An object only Python can read (a pickled put): FAILED_PRECONDITION, naming why.
  Value refs = client.call("polyglot_fns:python_only_ref");
  CHECK_THROWS(ember::RequestError, client.get(refs[0].as_ref()), {
    CHECK_EQ(e.code(), 9);
    CHECK(contains(e.details(), "Python-only value"));
  });
  CHECK_THROWS(ember::RequestError, client.get_actor("no-such-actor"), CHECK_EQ(e.code(), 5));
  CHECK_EQ(client.call("polyglot_fns:add", {1, 1}).as_int(), 2);
}

TEST(a_wrong_token_is_refused_as_unauthenticated) {
  ember::ConnectOptions options;
  options.token = "wrong";
  CHECK_THROWS(ember::RequestError, ember::Client::connect(options), CHECK_EQ(e.code(), 16));
  ember::ConnectOptions nowhere;
  nowhere.address = "127.0.0.1:1";
  nowhere.token = "x";
  nowhere.connect_timeout_s = 0.5;
  CHECK_THROWS(ember::RequestError, ember::Client::connect(nowhere), {
    CHECK_EQ(e.code(), 14);
    CHECK(contains(e.details(), "127.0.0.1:1"));
  });
}

TEST(put_and_get_maps_bytes_big_values_and_arrow_tables) {
  auto client = connect();
  Value map = Value::Map{{"a", Value::Array{1, 2}}, {"b", Bytes{'x', 'y'}}};
  CHECK_EQ(client.get(client.put(map)), map);
  Bytes big(5 << 20, 7);  // (more than one chunk each way)
  big[12345] = 1;
  CHECK(client.get(client.put(big)).as_bytes() == big);
  // A Python task's pyarrow.Table is an ArrowTable (IPC stream bytes), and goes back as a table.
  Value table = client.call("polyglot_fns:table_of", {4});
  CHECK(table.type() == Value::Type::Table);
  CHECK_EQ(table.as_table().ipc.substr(0, 4), std::string(4, '\xff'));  // (the IPC continuation marker)
  CHECK_EQ(client.call("polyglot_fns:table_sum", {table, "sq"}).as_int(), 14);
  ember::ObjectRef table_ref = client.put(table);
  CHECK_EQ(client.call("polyglot_fns:describe", {table_ref}).as_string(), "pyarrow.lib.Table");
  CHECK_EQ(client.get(table_ref), table);
  // A ref nested in an argument arrives as a ref, and Python gets its value.
  ember::ObjectRef seven = client.put(7);
  CHECK_EQ(client.call("polyglot_fns:get_ref_value", {Value::Array{seven}}).as_int(), 7);
}

TEST(wait_and_get_timeouts) {
  auto client = connect();
  ember::ObjectRef slow = client.submit("polyglot_fns:sleep_then", {3, "late"});
  ember::ObjectRef fast = client.submit("polyglot_fns:add", {1, 2});
  auto [ready, not_ready] = client.wait({slow, fast}, 1, 20.0);
  CHECK_EQ(ready.size(), 1u);
  CHECK(ready[0] == fast);
  CHECK(not_ready.size() == 1 && not_ready[0] == slow);
  CHECK_THROWS(ember::GetTimeoutError, client.get(slow, 0.2), CHECK_EQ(e.code(), 4));
  CHECK_EQ(client.get(slow).as_string(), "late");
}

TEST(actors_keep_state_run_calls_in_order_and_die_when_killed) {
  auto client = connect();
  ember::Actor counter = client.create_actor("polyglot_fns:Counter", {10});
  counter.ready(60.0);
  ember::TaskOptions by5;
  by5.kwargs = {{"by", 5}};
  std::vector<ember::ObjectRef> refs{counter.submit("inc"), counter.submit("inc"), counter.submit("inc", {}, by5)};
  auto values = client.get(refs);
  CHECK_EQ(Value(values), (Value::Array{11, 12, 17}));
  CHECK_THROWS(ember::RemoteError, counter.call("fail"), {
    CHECK_EQ(e.type(), "KeyError");
    CHECK(contains(e.function(), "fail"));
  });
  client.kill(counter);
  CHECK_THROWS(ember::RemoteError, counter.call("inc"), {
    CHECK(e.kind() == ember::RemoteError::Kind::System);
    CHECK_EQ(e.type(), "ActorDiedError");
  });
  // A constructor that raises: ready() throws its error.
  ember::Actor broken = client.create_actor("polyglot_fns:Counter", {}, [] {
    ember::ActorOptions o;
    o.kwargs = {{"no_such_arg", 1}};
    return o;
  }());
  CHECK_THROWS(ember::RemoteError, broken.ready(60.0), CHECK_EQ(e.type(), "TypeError"));
}

TEST(a_named_actor_made_in_cpp_is_called_from_a_python_driver) {
  auto client = connect();
  ember::ActorOptions options;
  options.name = "cpp-made";
  options.lifetime = "detached";
  ember::Actor made = client.create_actor("polyglot_fns:Counter", {100}, options);
  CHECK_EQ(made.call("inc").as_int(), 101);
  std::string from_python =
      harness::python("h = ember.get_actor('cpp-made', namespace='interop')\nprint(json.dumps(ember.get(h.inc.remote(5))))");
  CHECK_EQ(from_python, "106");
  ember::Actor again = client.get_actor("cpp-made");
  CHECK_EQ(again.call("value").as_int(), 106);
  CHECK_EQ(again.class_name(), made.class_name());
  // Taken names: ALREADY_EXISTS, unless get_if_exists.
  CHECK_THROWS(ember::RequestError, client.create_actor("polyglot_fns:Counter", {}, options), CHECK_EQ(e.code(), 6));
  options.get_if_exists = true;
  CHECK_EQ(client.create_actor("polyglot_fns:Counter", {}, options).call("value").as_int(), 106);
  client.kill(again);
}

TEST(a_named_actor_made_in_python_is_called_from_cpp) {
  harness::python(
      "from polyglot_fns import Decorated\n"
      "h = Decorated.options(name='py-made', namespace='interop', lifetime='detached').remote()\n"
      "print(json.dumps(ember.get(h.hello.remote('python'))))");
  auto client = connect();
  ember::Actor actor = client.get_actor("py-made", std::string("interop"));
  CHECK_EQ(actor.call("hello", {"c++"}).as_string(), "hello c++");
  client.kill(actor);
}

TEST(objects_put_from_cpp_are_a_dict_bytes_and_a_pyarrow_table_in_python) {
  auto client = connect();
  ember::ActorOptions named;
  named.name = "cpp-store";
  named.lifetime = "detached";
  ember::Actor store = client.create_actor("polyglot_fns:Store", {}, named);
  Value table = client.call("polyglot_fns:table_of", {3});
  std::vector<ember::ObjectRef> refs{client.put(Value::Map{{"answer", 42}}), client.put(Bytes{'r', 'a', 'w'}),
                                     client.put(table)};
  // Passed at top level: Python gets the values.
  CHECK_EQ(store.call("put", {"map", refs[0]}).as_string(), "builtins.dict");
  CHECK_EQ(store.call("put", {"bytes", refs[1]}).as_string(), "builtins.bytes");
  CHECK_EQ(store.call("put", {"table", refs[2]}).as_string(), "pyarrow.lib.Table");
  // Nested: the refs themselves, which a Python driver reads.
  CHECK_EQ(store.call("keep_refs", {"refs", Value::Array{refs[0], refs[1], refs[2]}}).as_int(), 3);
  std::string seen = harness::python(
      "s = ember.get_actor('cpp-store', namespace='interop')\n"
      "m, b, t = ember.get(ember.get(s.get.remote('refs')))\n"
      "print(json.dumps([type(m).__name__, m, type(b).__name__, b.decode(), type(t).__name__, "
      "t.column('sq').to_pylist()]))");
  CHECK_EQ(seen, "[\"dict\", {\"answer\": 42}, \"bytes\", \"raw\", \"Table\", [0, 1, 4]]");
  client.kill(store);
}

TEST(refs_a_client_drops_are_released) {
  auto client = connect();
  std::string id;
  {
    ember::ObjectRef ref = client.put(Bytes(1 << 20, 3));
    ember::ObjectRef copy = ref;  // (copies share one hold)
    id = ref.hex();
    CHECK_EQ(client.get(copy).as_bytes().size(), 1u << 20);
    CHECK_EQ(harness::python("from ember.util.state import list_objects\n"
                             "print(json.dumps(any(o['object_id'] == '" + id + "' for o in list_objects())))"),
             "true");
  }
  // The last copy went: the releaser tells the raylet, and the object is freed.
  std::string left = harness::python(
      "import time\nfrom ember.util.state import list_objects\n"
      "deadline = time.time() + 30\n"
      "while time.time() < deadline and any(o['object_id'] == '" + id + "' for o in list_objects()):\n"
      "    time.sleep(0.05)\n"
      "print(json.dumps(any(o['object_id'] == '" + id + "' for o in list_objects())))");
  CHECK_EQ(left, "false");
}

TEST(nodes_and_cluster_resources) {
  auto client = connect();
  auto nodes = client.nodes();
  CHECK_EQ(nodes.size(), 1u);
  CHECK(nodes[0].alive && nodes[0].is_head);
  CHECK_EQ(nodes[0].address + ":" + std::to_string(nodes[0].raylet_port), client.raylet_address());
  CHECK_EQ(client.cluster_resources().at("CPU"), 2.0);
}

TEST(one_client_serves_many_threads) {
  auto client = connect();
  std::vector<std::thread> threads;
  std::vector<std::int64_t> sums(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) sums[t] += client.call("polyglot_fns:add", {t, i}).as_int();
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) CHECK_EQ(sums[t], 25 * t + 300);
}

TEST(a_closed_client_says_so) {
  auto client = connect();
  ember::ObjectRef ref = client.put(1);
  client.close();
  CHECK_THROWS(ember::SessionError, client.get(ref), CHECK(contains(e.what(), "closed")));
  client.close();  // (idempotent)
}

TEST(address_and_token_default_to_this_machines_latest_ember_start) {
  std::string address = harness::env("EMBER_ADDRESS"), token = harness::env("EMBER_AUTH_TOKEN");
  harness::env("EMBER_SESSION_ROOT");
  unsetenv("EMBER_ADDRESS");
  unsetenv("EMBER_AUTH_TOKEN");
  try {
    ember::ConnectOptions options;
    options.code_search_path = {harness::env("EMBER_TEST_CODE")};
    auto client = ember::Client::connect(options);
    CHECK_EQ(client.call("polyglot_fns:add", {20, 22}).as_int(), 42);
  } catch (...) {
    setenv("EMBER_ADDRESS", address.c_str(), 1);
    setenv("EMBER_AUTH_TOKEN", token.c_str(), 1);
    throw;
  }
  setenv("EMBER_ADDRESS", address.c_str(), 1);
  setenv("EMBER_AUTH_TOKEN", token.c_str(), 1);
}
