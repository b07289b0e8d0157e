// The neutral encoding: one MessagePack document per value, ext type 1 for
// an object ref (20-byte id), 2 for an Arrow table (an Arrow IPC stream,
// always written as ext 32). docs/other-languages.md has the rules.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "ember/value.h"

namespace ember::msgpack {

constexpr int kMaxDepth = 100;
constexpr std::int8_t kExtRef = 1;
constexpr std::int8_t kExtTable = 2;

// The document for a value (EncodeError for an invalid ref or nesting past kMaxDepth).
std::string encode(const Value& value);

// The value of a document (DecodeError, saying where, if it is not a valid
// one); `make_ref` turns a ref's id into the client's ObjectRef.
Value decode(std::string_view document, const std::function<ObjectRef(const std::string&)>& make_ref);

}  // namespace ember::msgpack
