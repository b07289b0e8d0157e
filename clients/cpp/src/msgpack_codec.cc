#include "msgpack_codec.h"

#include <cstring>

namespace ember::msgpack {

namespace {

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_header(std::string& out, std::size_t n, unsigned char fix, unsigned fix_max, unsigned char b8,
                unsigned char b16, unsigned char b32) {
  if (fix && n <= fix_max) {
    out.push_back(static_cast<char>(fix | n));
  } else if (b8 && n <= 0xff) {
    out.push_back(static_cast<char>(b8));
    put_be(out, n, 1);
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(b16));
    put_be(out, n, 2);
  } else if (n <= 0xffffffffu) {
    out.push_back(static_cast<char>(b32));
    put_be(out, n, 4);
  } else {
    throw EncodeError("a string, bytes, array or map of " + std::to_string(n) + " items is past MessagePack's 2^32");
  }
}

void put_int(std::string& out, std::int64_t i) {
  if (i >= 0) {
    if (i < 128) {
      out.push_back(static_cast<char>(i));
    } else if (i <= 0xff) {
      out.push_back(static_cast<char>(0xcc)); put_be(out, i, 1);
    } else if (i <= 0xffff) {
      out.push_back(static_cast<char>(0xcd)); put_be(out, i, 2);
    } else if (i <= 0xffffffffLL) {
      out.push_back(static_cast<char>(0xce)); put_be(out, i, 4);
    } else {
      out.push_back(static_cast<char>(0xcf)); put_be(out, i, 8);
    }
  } else if (i >= -32) {
    out.push_back(static_cast<char>(i));
  } else if (i >= -128) {
    out.push_back(static_cast<char>(0xd0)); put_be(out, static_cast<std::uint64_t>(i), 1);
  } else if (i >= -32768) {
    out.push_back(static_cast<char>(0xd1)); put_be(out, static_cast<std::uint64_t>(i), 2);
  } else if (i >= INT32_MIN) {
    out.push_back(static_cast<char>(0xd2)); put_be(out, static_cast<std::uint64_t>(i), 4);
  } else {
    out.push_back(static_cast<char>(0xd3)); put_be(out, static_cast<std::uint64_t>(i), 8);
  }
}

void put(std::string& out, const Value& v, int depth) {
  if (depth > kMaxDepth) throw EncodeError("the value nests deeper than 100 levels");
  switch (v.type()) {
    case Value::Type::Null: out.push_back(static_cast<char>(0xc0)); return;
    case Value::Type::Bool: out.push_back(static_cast<char>(v.as_bool() ? 0xc3 : 0xc2)); return;
    case Value::Type::Int: put_int(out, v.as_int()); return;
    case Value::Type::Float: {
      double d = v.as_double();
      std::uint64_t bits;
      std::memcpy(&bits, &d, 8);
      out.push_back(static_cast<char>(0xcb));
      put_be(out, bits, 8);
      return;
    }
    case Value::Type::String: {
      const std::string& s = v.as_string();
      put_header(out, s.size(), 0xa0, 31, 0xd9, 0xda, 0xdb);
      out += s;
      return;
    }
    case Value::Type::Bytes: {
      const Bytes& b = v.as_bytes();
      put_header(out, b.size(), 0, 0, 0xc4, 0xc5, 0xc6);
      out.append(reinterpret_cast<const char*>(b.data()), b.size());
      return;
    }
    case Value::Type::Array:
      put_header(out, v.as_array().size(), 0x90, 15, 0, 0xdc, 0xdd);
      for (const Value& item : v.as_array()) put(out, item, depth + 1);
      return;
    case Value::Type::Map:
      put_header(out, v.as_map().size(), 0x80, 15, 0, 0xde, 0xdf);
      for (const auto& [key, item] : v.as_map()) {
        put_header(out, key.size(), 0xa0, 31, 0xd9, 0xda, 0xdb);
        out += key;
        put(out, item, depth + 1);
      }
      return;
    case Value::Type::Ref: {
      const std::string& id = v.as_ref().id();
      if (id.size() != 20) throw EncodeError("an empty ObjectRef (default-constructed) has no object to send");
      out.push_back(static_cast<char>(0xc7));  // ext 8
      put_be(out, 20, 1);
      out.push_back(kExtRef);
      out += id;
      return;
    }
    case Value::Type::Table: {
      const std::string& ipc = v.as_table().ipc;
      if (ipc.size() > 0xffffffffu) throw EncodeError("an Arrow table past 4 GiB has no neutral encoding");
      out.push_back(static_cast<char>(0xc9));  // ext 32, always (readers take the IPC bytes in place)
      put_be(out, ipc.size(), 4);
      out.push_back(kExtTable);
      out += ipc;
      return;
    }
  }
}

class Reader {
 public:
  Reader(std::string_view doc, const std::function<ObjectRef(const std::string&)>& make_ref)
      : doc_(doc), make_ref_(make_ref) {}

  Value value(int depth) {
    if (depth > kMaxDepth) fail("nests deeper than 100 levels");
    unsigned char b = byte();
    if (b <= 0x7f) return static_cast<std::int64_t>(b);
    if (b >= 0xe0) return static_cast<std::int64_t>(static_cast<std::int8_t>(b));
    if ((b & 0xe0) == 0xa0) return std::string(take(b & 0x1f));
    if ((b & 0xf0) == 0x90) return array(b & 0x0f, depth);
    if ((b & 0xf0) == 0x80) return map(b & 0x0f, depth);
    switch (b) {
      case 0xc0: return nullptr;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bytes(be(1));
      case 0xc5: return bytes(be(2));
      case 0xc6: return bytes(be(4));
      case 0xc7: return ext(be(1));
      case 0xc8: return ext(be(2));
      case 0xc9: return ext(be(4));
      case 0xca: {
        std::uint32_t bits = static_cast<std::uint32_t>(be(4));
        float f;
        std::memcpy(&f, &bits, 4);
        return static_cast<double>(f);
      }
      case 0xcb: {
        std::uint64_t bits = be(8);
        double d;
        std::memcpy(&d, &bits, 8);
        return d;
      }
      case 0xcc: return static_cast<std::int64_t>(be(1));
      case 0xcd: return static_cast<std::int64_t>(be(2));
      case 0xce: return static_cast<std::int64_t>(be(4));
      case 0xcf: {
        std::uint64_t u = be(8);
        if (u > static_cast<std::uint64_t>(INT64_MAX)) fail("holds an integer past int64's range");
        return static_cast<std::int64_t>(u);
      }
      case 0xd0: return static_cast<std::int64_t>(static_cast<std::int8_t>(be(1)));
      case 0xd1: return static_cast<std::int64_t>(static_cast<std::int16_t>(be(2)));
      case 0xd2: return static_cast<std::int64_t>(static_cast<std::int32_t>(be(4)));
      case 0xd3: return static_cast<std::int64_t>(be(8));
      case 0xd4: return ext(1);
      case 0xd5: return ext(2);
      case 0xd6: return ext(4);
      case 0xd7: return ext(8);
      case 0xd8: return ext(16);
      case 0xd9: return std::string(take(be(1)));
      case 0xda: return std::string(take(be(2)));
      case 0xdb: return std::string(take(be(4)));
      case 0xdc: return array(be(2), depth);
      case 0xdd: return array(be(4), depth);
      case 0xde: return map(be(2), depth);
      case 0xdf: return map(be(4), depth);
      default: fail("has the unused type byte 0xc1");
    }
  }

  void finish() {
    if (pos_ != doc_.size()) fail("has " + std::to_string(doc_.size() - pos_) + " bytes after the value");
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw DecodeError("the document is not a valid neutral value: it " + what + " (at byte " + std::to_string(pos_) +
                      ")");
  }
  unsigned char byte() {
    if (pos_ >= doc_.size()) fail("ends early");
    return static_cast<unsigned char>(doc_[pos_++]);
  }
  std::uint64_t be(int n) {
    if (doc_.size() - pos_ < static_cast<std::size_t>(n)) fail("ends early");
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(doc_[pos_++]);
    return v;
  }
  std::string_view take(std::uint64_t n) {
    if (doc_.size() - pos_ < n) fail("ends early");
    std::string_view out = doc_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  Value bytes(std::uint64_t n) {
    std::string_view b = take(n);
    return Bytes(b.begin(), b.end());
  }
  Value array(std::uint64_t n, int depth) {
    if (n > doc_.size() - pos_) fail("claims more items than it has bytes");
    Value::Array out;
    out.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) out.push_back(value(depth + 1));
    return out;
  }
  Value map(std::uint64_t n, int depth) {
    if (n > doc_.size() - pos_) fail("claims more items than it has bytes");
    Value::Map out;
    for (std::uint64_t i = 0; i < n; ++i) {
      Value key = value(depth + 1);
      if (key.type() != Value::Type::String) fail(std::string("has a map key that is a ") + type_name(key.type()) +
                                                  ", not a string");
      out[key.as_string()] = value(depth + 1);
    }
    return out;
  }
  Value ext(std::uint64_t n) {
    auto code = static_cast<std::int8_t>(byte());
    std::string_view data = take(n);
    if (code == kExtRef) {
      if (n != 20) fail("has a ref (ext 1) of " + std::to_string(n) + " bytes, not 20");
      return make_ref_(std::string(data));
    }
    if (code == kExtTable) return ArrowTable{std::string(data)};
    fail("has the ext type " + std::to_string(code) + " (only 1, a ref, and 2, an Arrow table, are used)");
  }

  std::string_view doc_;
  std::size_t pos_ = 0;
  const std::function<ObjectRef(const std::string&)>& make_ref_;
};

}  // namespace

std::string encode(const Value& value) {
  std::string out;
  put(out, value, 0);
  return out;
}

Value decode(std::string_view document, const std::function<ObjectRef(const std::string&)>& make_ref) {
  Reader reader(document, make_ref);
  Value v = reader.value(0);
  reader.finish();
  return v;
}

}  // namespace ember::msgpack
