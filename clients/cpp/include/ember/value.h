// Values in the language-neutral encoding (docs/other-languages.md): null,
// bool, 64-bit integers, doubles, strings, raw bytes, arrays, string-keyed
// maps, object refs and Arrow tables. A Python function gets them as None,
// bool, int, float, str, bytes, list, dict, ember.ObjectRef and
// pyarrow.Table, and its results come back the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "ember/errors.h"

namespace ember {

// Raw bytes (Python `bytes`), as distinct from text.
using Bytes = std::vector<std::uint8_t>;

// An Arrow table as an Arrow IPC stream (schema, record batches,
// end-of-stream): hand `ipc` to arrow::ipc::RecordBatchStreamReader where
// Arrow C++ is linked; a Python function gets a pyarrow.Table.
struct ArrowTable {
  std::string ipc;
  bool operator==(const ArrowTable& other) const { return ipc == other.ipc; }
};

class RefTracker;

// A reference to an object in the cluster (20-byte id). Copies share one
// hold: when the last copy of a ref is gone, the client tells the cluster it
// no longer holds the object (freed when nothing else does). A ref may
// outlive its client; it then holds nothing.
class ObjectRef {
 public:
  ObjectRef() = default;
  // The 20 raw bytes of the object id.
  const std::string& id() const;
  std::string hex() const;
  bool valid() const { return static_cast<bool>(hold_); }
  bool operator==(const ObjectRef& other) const { return id() == other.id(); }
  bool operator!=(const ObjectRef& other) const { return !(*this == other); }

 private:
  friend class RefTracker;
  struct Hold;
  explicit ObjectRef(std::shared_ptr<const Hold> hold) : hold_(std::move(hold)) {}
  std::shared_ptr<const Hold> hold_;
};

class Value {
 public:
  using Array = std::vector<Value>;
  using Map = std::map<std::string, Value>;
  enum class Type { Null, Bool, Int, Float, String, Bytes, Array, Map, Ref, Table };

  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  // Every integer type is an int64 (an unsigned one past int64's range is refused).
  template <typename T, typename std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Value(T i) : v_(checked_int(i)) {}
  Value(double d) : v_(d) {}
  Value(float d) : v_(static_cast<double>(d)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(Bytes b) : v_(std::move(b)) {}
  Value(Array a) : v_(std::move(a)) {}
  Value(Map m) : v_(std::move(m)) {}
  Value(ObjectRef r) : v_(std::move(r)) {}
  Value(ArrowTable t) : v_(std::move(t)) {}

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_null() const { return type() == Type::Null; }

  // The value as a C++ type; TypeMismatch (naming both types) if it is another.
  bool as_bool() const;
  std::int64_t as_int() const;
  double as_double() const;  // an int too
  const std::string& as_string() const;
  const Bytes& as_bytes() const;
  const Array& as_array() const;
  const Map& as_map() const;
  const ObjectRef& as_ref() const;
  const ArrowTable& as_table() const;
  Array& as_array();
  Map& as_map();

  // A map's entry (TypeMismatch if not a map, KeyNotFound if absent); an array's element.
  const Value& operator[](const std::string& key) const;
  const Value& operator[](const char* key) const { return (*this)[std::string(key)]; }
  const Value& operator[](std::size_t index) const;
  const Value& operator[](int index) const { return (*this)[static_cast<std::size_t>(index)]; }
  std::size_t size() const;  // of an array or map

  bool operator==(const Value& other) const { return v_ == other.v_; }
  bool operator!=(const Value& other) const { return !(*this == other); }

  // A readable form, for messages and printing: {"a": [1, 2.5, b"\x00"]}.
  std::string repr() const;

 private:
  template <typename T>
  static std::int64_t checked_int(T i) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (i > static_cast<T>(INT64_MAX)) throw EncodeError("an integer past int64's range has no neutral encoding");
    }
    return static_cast<std::int64_t>(i);
  }
  const char* type_name() const;
  [[noreturn]] void mismatch(const char* wanted) const;

  std::variant<std::monostate, bool, std::int64_t, double, std::string, Bytes, Array, Map, ObjectRef, ArrowTable> v_;
};

std::ostream& operator<<(std::ostream& out, const Value& value);
const char* type_name(Value::Type type);

}  // namespace ember
