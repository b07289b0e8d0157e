// What bench/client_api.py measures for the C++ client: sync call and get
// round trips, and 1,000 tasks submitted then got. Prints one JSON line.
//
//   client_api_bench CODE_DIR CALLS TASKS ROUNDS   (cluster from EMBER_ADDRESS / EMBER_AUTH_TOKEN)

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <vector>

#include "ember/client.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string json_list(const std::vector<double>& xs) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < xs.size(); ++i) out << (i ? "," : "") << xs[i];
  out << ']';
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: client_api_bench CODE_DIR CALLS TASKS ROUNDS\n";
    return 2;
  }
  int calls = std::atoi(argv[2]), tasks = std::atoi(argv[3]), rounds = std::atoi(argv[4]);
  ember::ConnectOptions options;
  options.code_search_path = {argv[1]};
  options.log_to_driver = false;
  ember::Client client = ember::Client::connect(options);
  for (int i = 0; i < 20; ++i) client.call("polyglot_fns:add", {i, 1});  // (warm: workers, channels)

  std::vector<double> call_ms, get_ms, tasks_per_s, batched_per_s;
  double t0 = now_s();
  for (int i = 0; i < calls; ++i) client.call("polyglot_fns:add", {i, 1});
  call_ms.push_back((now_s() - t0) * 1000 / calls);

  ember::ObjectRef small = client.put(ember::Value::Map{{"k", 1}});
  t0 = now_s();
  for (int i = 0; i < calls; ++i) client.get(small);
  get_ms.push_back((now_s() - t0) * 1000 / calls);

  for (int r = 0; r < rounds; ++r) {
    t0 = now_s();
    std::vector<ember::ObjectRef> refs;
    refs.reserve(tasks);
    for (int i = 0; i < tasks; ++i) refs.push_back(client.submit("polyglot_fns:add", {i, 1}));
    client.get(refs);
    tasks_per_s.push_back(tasks / (now_s() - t0));
    // The same in one request (submit_many).
    t0 = now_s();
    std::vector<ember::TaskCall> calls;
    calls.reserve(tasks);
    for (int i = 0; i < tasks; ++i) calls.push_back({"polyglot_fns:add", {i, 1}, {}});
    refs.clear();
    for (auto& returns : client.submit_many(calls)) refs.push_back(returns.at(0));
    client.get(refs);
    batched_per_s.push_back(tasks / (now_s() - t0));
  }
  std::cout << "{\"call_ms\": " << json_list(call_ms) << ", \"get_ms\": " << json_list(get_ms)
            << ", \"tasks_per_s\": " << json_list(tasks_per_s)
            << ", \"batched_tasks_per_s\": " << json_list(batched_per_s) << "}" << std::endl;
  return 0;
}
