#include <cstdio>
#include <sstream>

#include "refs.h"

namespace ember {

namespace {
const std::string kNoId;
}

const std::string& ObjectRef::id() const { return hold_ ? hold_->id : kNoId; }

std::string ObjectRef::hex() const {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : id()) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

const char* type_name(Value::Type type) {
  switch (type) {
    case Value::Type::Null: return "null";
    case Value::Type::Bool: return "bool";
    case Value::Type::Int: return "int";
    case Value::Type::Float: return "float";
    case Value::Type::String: return "string";
    case Value::Type::Bytes: return "bytes";
    case Value::Type::Array: return "array";
    case Value::Type::Map: return "map";
    case Value::Type::Ref: return "ObjectRef";
    case Value::Type::Table: return "ArrowTable";
  }
  return "?";
}

const char* Value::type_name() const { return ember::type_name(type()); }

void Value::mismatch(const char* wanted) const {
  std::string shown = repr();
  if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
  throw TypeMismatch(std::string("expected ") + wanted + ", got " + type_name() + " " + shown);
}

bool Value::as_bool() const {
  if (auto p = std::get_if<bool>(&v_)) return *p;
  mismatch("bool");
}
std::int64_t Value::as_int() const {
  if (auto p = std::get_if<std::int64_t>(&v_)) return *p;
  mismatch("int");
}
double Value::as_double() const {
  if (auto p = std::get_if<double>(&v_)) return *p;
  if (auto p = std::get_if<std::int64_t>(&v_)) return static_cast<double>(*p);
  mismatch("float");
}
const std::string& Value::as_string() const {
  if (auto p = std::get_if<std::string>(&v_)) return *p;
  mismatch("string");
}
const Bytes& Value::as_bytes() const {
  if (auto p = std::get_if<Bytes>(&v_)) return *p;
  mismatch("bytes");
}
const Value::Array& Value::as_array() const {
  if (auto p = std::get_if<Array>(&v_)) return *p;
  mismatch("array");
}
Value::Array& Value::as_array() {
  if (auto p = std::get_if<Array>(&v_)) return *p;
  mismatch("array");
}
const Value::Map& Value::as_map() const {
  if (auto p = std::get_if<Map>(&v_)) return *p;
  mismatch("map");
}
Value::Map& Value::as_map() {
  if (auto p = std::get_if<Map>(&v_)) return *p;
  mismatch("map");
}
const ObjectRef& Value::as_ref() const {
  if (auto p = std::get_if<ObjectRef>(&v_)) return *p;
  mismatch("ObjectRef");
}
const ArrowTable& Value::as_table() const {
  if (auto p = std::get_if<ArrowTable>(&v_)) return *p;
  mismatch("ArrowTable");
}

const Value& Value::operator[](const std::string& key) const {
  const Map& map = as_map();
  auto it = map.find(key);
  if (it == map.end()) throw TypeMismatch("no key \"" + key + "\" in the map");
  return it->second;
}

const Value& Value::operator[](std::size_t index) const {
  const Array& array = as_array();
  if (index >= array.size()) {
    throw TypeMismatch("index " + std::to_string(index) + " past the array's " + std::to_string(array.size()));
  }
  return array[index];
}

std::size_t Value::size() const {
  if (auto p = std::get_if<Array>(&v_)) return p->size();
  if (auto p = std::get_if<Map>(&v_)) return p->size();
  mismatch("array or map");
}

namespace {

void quote(std::ostream& out, const std::string& s, bool bytes) {
  out << (bytes ? "b\"" : "\"");
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out << '\\' << c;
    } else if (c < 0x20 || c >= 0x7f) {
      if (!bytes && c >= 0x80) {
        out << c;  // (UTF-8 text as it is)
      } else {
        char buf[5];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out << buf;
      }
    } else {
      out << c;
    }
  }
  out << '"';
}

}  // namespace

std::ostream& operator<<(std::ostream& out, const Value& value) {
  switch (value.type()) {
    case Value::Type::Null: return out << "null";
    case Value::Type::Bool: return out << (value.as_bool() ? "true" : "false");
    case Value::Type::Int: return out << value.as_int();
    case Value::Type::Float: return out << value.as_double();
    case Value::Type::String: quote(out, value.as_string(), false); return out;
    case Value::Type::Bytes: {
      const Bytes& b = value.as_bytes();
      quote(out, std::string(b.begin(), b.end()), true);
      return out;
    }
    case Value::Type::Array: {
      out << '[';
      bool first = true;
      for (const Value& v : value.as_array()) {
        out << (first ? "" : ", ") << v;
        first = false;
      }
      return out << ']';
    }
    case Value::Type::Map: {
      out << '{';
      bool first = true;
      for (const auto& [k, v] : value.as_map()) {
        out << (first ? "" : ", ");
        quote(out, k, false);
        out << ": " << v;
        first = false;
      }
      return out << '}';
    }
    case Value::Type::Ref: return out << "ObjectRef(" << value.as_ref().hex() << ")";
    case Value::Type::Table: return out << "ArrowTable(" << value.as_table().ipc.size() << " bytes of Arrow IPC)";
  }
  return out;
}

std::string Value::repr() const {
  std::ostringstream out;
  out << *this;
  return out.str();
}

}  // namespace ember
