// The neutral encoding's bytes: what Python's msgpack (use_bin_type=True)
// writes for the same values, and documents that must be refused. No cluster.

#include <cstring>

#include "ember/value.h"
#include "harness.h"
#include "msgpack_codec.h"

using ember::Bytes;
using ember::Value;

namespace {

std::string hex(const std::string& s) {
  static const char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string unhex(const std::string& h) {
  std::string out;
  for (std::size_t i = 0; i < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

ember::ObjectRef no_refs(const std::string&) { throw harness::Failure("no ref expected"); }

Value roundtrip(const Value& v) { return ember::msgpack::decode(ember::msgpack::encode(v), no_refs); }

}  // namespace

TEST(scalars_are_msgpacks_bytes) {
  // (the expected bytes are msgpack.packb(value, use_bin_type=True) in Python)
  CHECK_EQ(hex(ember::msgpack::encode(Value())), "c0");
  CHECK_EQ(hex(ember::msgpack::encode(true)), "c3");
  CHECK_EQ(hex(ember::msgpack::encode(5)), "05");
  CHECK_EQ(hex(ember::msgpack::encode(-1)), "ff");
  CHECK_EQ(hex(ember::msgpack::encode(-33)), "d0df");
  CHECK_EQ(hex(ember::msgpack::encode(200)), "ccc8");
  CHECK_EQ(hex(ember::msgpack::encode(70000)), "ce00011170");
  CHECK_EQ(hex(ember::msgpack::encode(INT64_MIN)), "d38000000000000000");
  CHECK_EQ(hex(ember::msgpack::encode(int64_t{1} << 62)), "cf4000000000000000");
  CHECK_EQ(hex(ember::msgpack::encode(1.5)), "cb3ff8000000000000");
  CHECK_EQ(hex(ember::msgpack::encode("héllo")), "a668c3a96c6c6f");
  CHECK_EQ(hex(ember::msgpack::encode(Bytes{0, 255})), "c40200ff");
  CHECK_EQ(hex(ember::msgpack::encode(Value::Array{1, "a", nullptr})), "9301a161c0");
  CHECK_EQ(hex(ember::msgpack::encode(Value::Map{{"k", Value::Array{}}})), "81a16b90");
}

TEST(values_round_trip) {
  Value v = Value::Map{{"ints", Value::Array{0, -1, 127, 128, -32, -33, 255, 65536, INT64_MAX, INT64_MIN}},
                       {"float", 2.25}, {"text", std::string(300, 'x')}, {"bytes", Bytes(70000, 7)},
                       {"nested", Value::Map{{"deep", Value::Array{Value::Array{Value::Map{}}}}}},
                       {"table", ember::ArrowTable{std::string(10, '\xff')}}, {"bool", false}};
  CHECK_EQ(roundtrip(v), v);
  CHECK_EQ(roundtrip(v)["ints"][8].as_int(), INT64_MAX);
  CHECK_EQ(roundtrip(v)["bytes"].as_bytes().size(), 70000u);
  // A float 32 is read as a double.
  CHECK_EQ(ember::msgpack::decode(unhex("ca3fc00000"), no_refs).as_double(), 1.5);
  // A table is always ext 32 (0xc9), type 2.
  CHECK_EQ(hex(ember::msgpack::encode(ember::ArrowTable{"ab"})), "c900000002026162");
}

TEST(refs_are_ext_1_with_the_20_byte_id) {
  std::string id(20, '\x07');
  std::string seen;
  Value v = ember::msgpack::decode(unhex("c71401" + hex(id)), [&](const std::string& got) {
    seen = got;
    return ember::ObjectRef();
  });
  CHECK_EQ(hex(seen), hex(id));
  CHECK(v.type() == Value::Type::Ref);
  CHECK_THROWS(ember::EncodeError, ember::msgpack::encode(ember::ObjectRef()), CHECK(std::strstr(e.what(), "empty")));
}

TEST(invalid_documents_are_refused_saying_why) {
  auto refused = [](const std::string& doc_hex, const char* why) {
    CHECK_THROWS(ember::DecodeError, ember::msgpack::decode(unhex(doc_hex), no_refs),
                 if (!std::strstr(e.what(), why)) harness::fail(__FILE__, __LINE__, e.what()));
  };
  refused("", "ends early");
  refused("92c0", "more items than it has bytes");
  refused("a5616263", "ends early");
  refused("c1", "0xc1");
  refused("8101c0", "map key that is a int");
  refused("d40501", "ext type 5");
  refused("c70301616263", "ref (ext 1) of 3 bytes");
  refused("cfffffffffffffffff", "past int64");
  refused("c0c0", "after the value");
  refused("dd7fffffff", "more items than it has bytes");
  std::string deep_doc;
  for (int i = 0; i < 101; ++i) deep_doc += "91";
  refused(deep_doc + "c0", "deeper than 100");
  Value deep;
  for (int i = 0; i < 101; ++i) deep = Value::Array{deep};
  CHECK_THROWS(ember::EncodeError, ember::msgpack::encode(deep), (void)e);
}

TEST(values_read_as_the_wrong_type_say_what_they_are) {
  Value v = Value::Map{{"a", 1}};
  CHECK_THROWS(ember::TypeMismatch, v["a"].as_string(), CHECK(std::string(e.what()) == "expected string, got int 1"));
  CHECK_THROWS(ember::TypeMismatch, v["b"], CHECK(std::strstr(e.what(), "no key \"b\"")));
  CHECK_EQ(v["a"].as_double(), 1.0);
  CHECK_EQ(Value(Value::Array{1, "x", Bytes{1}}).repr(), "[1, \"x\", b\"\\x01\"]");
  CHECK_THROWS(ember::EncodeError, Value(std::uint64_t{1} << 63), (void)e);
}
