//===- SafeTensors.h - reading safetensors weight files ---------*- C++ -*-===//
//
// The weight format of Hugging Face checkpoints: an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte
// range, then the bytes. Files are mapped, not copied. No MLIR, no LLVM: the
// runtime's own small JSON reader handles the header.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_RT_SAFETENSORS_H
#define KVC_RT_SAFETENSORS_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kvc::rt {

/// One tensor of a safetensors file: its dtype as the file spells it ("F32",
/// "BF16", ...), shape and bytes (inside the mapping).
struct WeightView {
  std::string dtype;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t bytes = 0;
};

/// What a compiled model expects of one weight. A packed weight (q, k and
/// v projections in one) lists the checkpoint tensors stacked along its
/// first dimension, in order; the checkpoint holds those, not it.
struct WeightSpec {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::vector<WeightSpec> parts;
};

/// The tensors of one safetensors file or of every `*.safetensors` file of a
/// directory (a sharded checkpoint).
class SafeTensors {
public:
  /// Opens and checks `path` (a file or a directory). Null on failure, with
  /// `error` naming the file and what is wrong: unreadable, truncated, a bad
  /// header, a tensor whose bytes do not match its dtype and shape or lie
  /// outside the file, a name in two shards.
  static std::unique_ptr<SafeTensors> open(const std::string &path,
                                           std::string &error);
  ~SafeTensors();
  SafeTensors(const SafeTensors &) = delete;
  SafeTensors &operator=(const SafeTensors &) = delete;

  const WeightView *find(const std::string &name) const;
  const std::map<std::string, WeightView> &tensors() const { return tensors_; }

  /// Empty if every expected weight (every part of a packed one) is present
  /// with its dtype and shape; else one line per problem (missing, wrong
  /// dtype, wrong shape).
  std::string check(const std::vector<WeightSpec> &expected) const;

private:
  SafeTensors() = default;
  bool add(const std::string &file, std::string &error);

  struct Mapping {
    void *address;
    size_t size;
  };
  std::vector<Mapping> mappings_;
  std::map<std::string, WeightView> tensors_;
};

/// What kvc-compile says of a model it compiled (`manifest.json`): the
/// weights it expects ({"weights": [{"name", "dtype", "shape"}]}), its
/// string fields (target, library, kernels, dtype) and integer fields
/// (vocab_size, the words of each entry point's arguments).
struct Manifest {
  std::vector<WeightSpec> weights;
  std::map<std::string, std::string> strings;
  std::map<std::string, int64_t> integers;
};

/// False with `error` set on malformed input.
bool parseManifest(const std::string &json, Manifest &manifest,
                   std::string &error);

/// Bytes per element of a safetensors dtype, 0 if unknown.
int64_t dtypeBytes(const std::string &dtype);

} // namespace kvc::rt

#endif // KVC_RT_SAFETENSORS_H
