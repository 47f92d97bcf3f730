//===- SafeTensors.cpp - reading safetensors weight files ------------------===//
#include "kvc/rt/SafeTensors.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kvc::rt {

namespace {

/// A JSON value, as much of JSON as safetensors headers use.
struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool boolean = false;
  double number = 0;
  bool integral = false;
  int64_t integer = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  const Json *get(const std::string &key) const {
    for (const auto &[k, v] : object)
      if (k == key)
        return &v;
    return nullptr;
  }
};

/// Recursive descent over the header text; on error `problem` says where.
class Parser {
public:
  explicit Parser(const std::string &text) : s(text) {}

  bool parse(Json &out, std::string &problem) {
    if (!value(out, 0) || (skip(), pos != s.size())) {
      problem = "invalid JSON header near byte " + std::to_string(pos);
      return false;
    }
    return true;
  }

private:
  void skip() {
    while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos])))
      ++pos;
  }
  bool literal(const char *word) {
    size_t n = std::strlen(word);
    if (s.compare(pos, n, word) != 0)
      return false;
    pos += n;
    return true;
  }
  bool stringValue(std::string &out) {
    if (pos >= s.size() || s[pos] != '"')
      return false;
    ++pos;
    while (pos < s.size() && s[pos] != '"') {
      char c = s[pos++];
      if (c == '\\') {
        if (pos >= s.size())
          return false;
        char e = s[pos++];
        switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u':
          // Names are ASCII in practice; keep the escape as written.
          out += "\\u";
          break;
        default: out += e;
        }
      } else {
        out += c;
      }
    }
    if (pos >= s.size())
      return false;
    ++pos;
    return true;
  }
  bool value(Json &out, int depth) {
    if (depth > 64)
      return false;
    skip();
    if (pos >= s.size())
      return false;
    char c = s[pos];
    if (c == '{') {
      out.kind = Json::Object;
      ++pos;
      skip();
      if (pos < s.size() && s[pos] == '}')
        return ++pos, true;
      while (true) {
        skip();
        std::string key;
        if (!stringValue(key))
          return false;
        skip();
        if (pos >= s.size() || s[pos++] != ':')
          return false;
        Json v;
        if (!value(v, depth + 1))
          return false;
        out.object.emplace_back(std::move(key), std::move(v));
        skip();
        if (pos < s.size() && s[pos] == ',') {
          ++pos;
          continue;
        }
        return pos < s.size() && s[pos++] == '}';
      }
    }
    if (c == '[') {
      out.kind = Json::Array;
      ++pos;
      skip();
      if (pos < s.size() && s[pos] == ']')
        return ++pos, true;
      while (true) {
        Json v;
        if (!value(v, depth + 1))
          return false;
        out.array.push_back(std::move(v));
        skip();
        if (pos < s.size() && s[pos] == ',') {
          ++pos;
          continue;
        }
        return pos < s.size() && s[pos++] == ']';
      }
    }
    if (c == '"') {
      out.kind = Json::String;
      return stringValue(out.string);
    }
    if (literal("null"))
      return out.kind = Json::Null, true;
    if (literal("true"))
      return out.kind = Json::Bool, out.boolean = true, true;
    if (literal("false"))
      return out.kind = Json::Bool, out.boolean = false, true;
    size_t start = pos;
    while (pos < s.size() && std::strchr("+-0123456789.eE", s[pos]))
      ++pos;
    if (start == pos)
      return false;
    std::string text = s.substr(start, pos - start);
    out.kind = Json::Number;
    char *end = nullptr;
    out.number = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size())
      return false;
    out.integral = text.find_first_of(".eE") == std::string::npos;
    if (out.integral)
      out.integer = std::strtoll(text.c_str(), nullptr, 10);
    return true;
  }

  const std::string &s;
  size_t pos = 0;
};

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

} // namespace

bool parseManifest(const std::string &json, Manifest &manifest,
                   std::string &error) {
  Json root;
  if (!Parser(json).parse(root, error))
    return false;
  std::vector<WeightSpec> &weights = manifest.weights;
  for (const auto &[key, value] : root.object) {
    if (value.kind == Json::String)
      manifest.strings[key] = value.string;
    else if (value.kind == Json::Number && value.integral)
      manifest.integers[key] = value.integer;
  }
  const Json *list = root.get("weights");
  if (root.kind != Json::Object || !list || list->kind != Json::Array) {
    error = "the manifest has no \"weights\" list";
    return false;
  }
  // name, shape and (inherited by parts) dtype of one weight or part.
  auto readSpec = [&](const Json &w, const std::string &inherited,
                      WeightSpec &spec) {
    const Json *name = w.get("name"), *dtype = w.get("dtype"),
               *shape = w.get("shape");
    if (!name || name->kind != Json::String ||
        (inherited.empty() && (!dtype || dtype->kind != Json::String)) ||
        !shape || shape->kind != Json::Array) {
      error = "manifest weight " + std::to_string(weights.size()) +
              " lacks a name, a dtype or a shape";
      return false;
    }
    spec = {name->string, inherited.empty() ? dtype->string : inherited, {},
            {}};
    for (const Json &d : shape->array) {
      if (d.kind != Json::Number || !d.integral || d.integer < 0) {
        error = "manifest weight '" + spec.name + "' has a bad shape";
        return false;
      }
      spec.shape.push_back(d.integer);
    }
    return true;
  };
  for (const Json &w : list->array) {
    WeightSpec spec;
    if (!readSpec(w, "", spec))
      return false;
    if (const Json *parts = w.get("parts")) {
      int64_t rows = 0;
      for (const Json &p : parts->array) {
        WeightSpec part;
        if (!readSpec(p, spec.dtype, part))
          return false;
        if (part.shape.size() != spec.shape.size() ||
            !std::equal(part.shape.begin() + 1, part.shape.end(),
                        spec.shape.begin() + 1)) {
          error = "manifest weight '" + spec.name + "': part '" + part.name +
                  "' does not stack into it";
          return false;
        }
        rows += part.shape[0];
        spec.parts.push_back(std::move(part));
      }
      if (spec.shape.empty() || rows != spec.shape[0]) {
        error = "manifest weight '" + spec.name + "': its parts have " +
                std::to_string(rows) + " rows";
        return false;
      }
    }
    weights.push_back(std::move(spec));
  }
  return true;
}

int64_t dtypeBytes(const std::string &dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64")
    return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32")
    return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16")
    return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" ||
      dtype == "F8_E5M2")
    return 1;
  return 0;
}

bool SafeTensors::add(const std::string &file, std::string &error) {
  auto fail = [&](const std::string &why) {
    error = file + ": " + why;
    return false;
  };
  int fd = ::open(file.c_str(), O_RDONLY);
  if (fd < 0)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return fail("cannot stat");
  }
  size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return fail("truncated: " + std::to_string(size) +
                " bytes, less than the 8-byte header length");
  }
  void *address = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (address == MAP_FAILED)
    return fail("cannot map the file");
  mappings_.push_back({address, size});
  const uint8_t *bytes = static_cast<const uint8_t *>(address);
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = (headerSize << 8) | bytes[i];
  if (headerSize > size - 8)
    return fail("truncated: the header claims " + std::to_string(headerSize) +
                " bytes, the file has " + std::to_string(size - 8) +
                " after the length");
  std::string header(reinterpret_cast<const char *>(bytes + 8), headerSize);
  Json root;
  std::string problem;
  if (!Parser(header).parse(root, problem))
    return fail(problem);
  if (root.kind != Json::Object)
    return fail("the header is not a JSON object");
  const uint8_t *data = bytes + 8 + headerSize;
  size_t dataSize = size - 8 - headerSize;
  for (const auto &[name, entry] : root.object) {
    if (name == "__metadata__")
      continue;
    const Json *dtype = entry.get("dtype"), *shape = entry.get("shape"),
               *offsets = entry.get("data_offsets");
    if (!dtype || dtype->kind != Json::String || !shape ||
        shape->kind != Json::Array || !offsets ||
        offsets->kind != Json::Array || offsets->array.size() != 2)
      return fail("tensor '" + name +
                  "' lacks a dtype, a shape or two data_offsets");
    WeightView view;
    view.dtype = dtype->string;
    int64_t elements = 1;
    for (const Json &d : shape->array) {
      if (d.kind != Json::Number || !d.integral || d.integer < 0)
        return fail("tensor '" + name + "' has a bad shape");
      view.shape.push_back(d.integer);
      elements *= d.integer;
    }
    const Json &begin = offsets->array[0], &end = offsets->array[1];
    if (begin.kind != Json::Number || end.kind != Json::Number ||
        !begin.integral || !end.integral || begin.integer < 0 ||
        end.integer < begin.integer ||
        static_cast<uint64_t>(end.integer) > dataSize)
      return fail("tensor '" + name + "' lies outside the file (offsets " +
                  std::to_string(begin.integer) + ".." +
                  std::to_string(end.integer) + ", data is " +
                  std::to_string(dataSize) + " bytes)");
    int64_t width = dtypeBytes(view.dtype);
    if (width == 0)
      return fail("tensor '" + name + "' has unknown dtype " + view.dtype);
    view.bytes = static_cast<size_t>(end.integer - begin.integer);
    if (static_cast<int64_t>(view.bytes) != elements * width)
      return fail("tensor '" + name + "' has " + std::to_string(view.bytes) +
                  " bytes for " + view.dtype + " " + shapeString(view.shape));
    view.data = data + begin.integer;
    if (!tensors_.emplace(name, view).second)
      return fail("tensor '" + name + "' appears in two files");
  }
  return true;
}

std::unique_ptr<SafeTensors> SafeTensors::open(const std::string &path,
                                               std::string &error) {
  std::unique_ptr<SafeTensors> result(new SafeTensors());
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    error = path + ": " + std::strerror(errno);
    return nullptr;
  }
  std::vector<std::string> files;
  if (S_ISDIR(st.st_mode)) {
    if (DIR *dir = opendir(path.c_str())) {
      while (dirent *entry = readdir(dir)) {
        std::string name = entry->d_name;
        const std::string suffix = ".safetensors";
        if (name.size() > suffix.size() &&
            name.compare(name.size() - suffix.size(), suffix.size(), suffix) ==
                0)
          files.push_back(path + "/" + name);
      }
      closedir(dir);
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      error = path + ": no .safetensors files in this directory";
      return nullptr;
    }
  } else {
    files.push_back(path);
  }
  for (const std::string &file : files)
    if (!result->add(file, error))
      return nullptr;
  return result;
}

SafeTensors::~SafeTensors() {
  for (const Mapping &m : mappings_)
    munmap(m.address, m.size);
}

const WeightView *SafeTensors::find(const std::string &name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::string SafeTensors::check(const std::vector<WeightSpec> &expected) const {
  std::string problems;
  auto checkOne = [&](const WeightSpec &spec) {
    const WeightView *w = find(spec.name);
    if (!w)
      problems += "missing weight '" + spec.name + "' (" + spec.dtype + " " +
                  shapeString(spec.shape) + ")\n";
    else if (w->dtype != spec.dtype)
      problems += "weight '" + spec.name + "' is " + w->dtype +
                  ", the model expects " + spec.dtype + "\n";
    else if (w->shape != spec.shape)
      problems += "weight '" + spec.name + "' has shape " +
                  shapeString(w->shape) + ", the model expects " +
                  shapeString(spec.shape) + "\n";
  };
  for (const WeightSpec &spec : expected) {
    // A packed weight is its parts in the checkpoint.
    if (spec.parts.empty())
      checkOne(spec);
    for (const WeightSpec &part : spec.parts)
      checkOne(part);
  }
  return problems;
}

} // namespace kvc::rt
