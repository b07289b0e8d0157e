// The C++ client in a few lines: call Python by name, submit and get, put a
// value, use an actor. Run against a cluster started with `ember start
// --head` on this machine (address and token found from its session), with
// Python code the workers can import:
//
//   ember_example /path/to/tests/polyglot_code
//
// (polyglot_code has add(a, b) and class Counter).

#include <ember/client.h>

#include <iostream>

int main(int argc, char** argv) {
  try {
    ember::ConnectOptions options;
    if (argc > 1) options.code_search_path = {argv[1]};
    ember::Client client = ember::Client::connect(options);

    std::cout << "add(2, 3) = " << client.call("polyglot_fns:add", {2, 3}) << "\n";

    std::vector<ember::ObjectRef> refs;
    for (int i = 0; i < 4; ++i) refs.push_back(client.submit("polyglot_fns:add", {i, 100}));
    for (const ember::Value& v : client.get(refs, /*timeout_s=*/60)) std::cout << v << " ";
    std::cout << "\n";

    ember::ObjectRef stored = client.put(ember::Value::Map{{"answer", 42}, {"raw", ember::Bytes{1, 2, 3}}});
    std::cout << "put and got back: " << client.get(stored) << "\n";

    ember::Actor counter = client.create_actor("polyglot_fns:Counter", {10});
    counter.call("inc");
    std::cout << "counter: " << counter.call("inc", {5}) << "\n";

    try {
      client.call("polyglot_fns:fail", {"on purpose"});
    } catch (const ember::RemoteError& e) {
      std::cout << "Python raised " << e.type() << ": " << e.message() << "\n";
    }
    return 0;
  } catch (const ember::Error& e) {
    std::cerr << "ember: " << e.what() << "\n";
    return 1;
  }
}
