//===- CPUReferenceTest.cpp - kvc CPU lowering vs. a float64 reference -----===//
//
// Compiles kvc attention ops through kvc-cpu-pipeline, runs them on fresh
// random inputs and compares every output with an attention written here
// in float64. The seed is printed on failure; KVC_TEST_SEED repeats a run.
//
//===----------------------------------------------------------------------===//

#include "kvc/Execution/CPUModule.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FormatVariadic.h"
#include "gtest/gtest.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <vector>

using mlir::kvc::CPUModule;

namespace {

enum class Elem { F32, F16, BF16 };

const char *mlirName(Elem e) {
  switch (e) {
  case Elem::F32:
    return "f32";
  case Elem::F16:
    return "f16";
  case Elem::BF16:
    return "bf16";
  }
  return "";
}

size_t byteSize(Elem e) { return e == Elem::F32 ? 4 : 2; }

/// Relative error allowed for an output rounded to `e` (f32 arithmetic
/// inside): a few ulps of the element type.
double tolerance(Elem e) {
  switch (e) {
  case Elem::F32:
    return 1e-5;
  case Elem::F16:
    return 2e-3;
  case Elem::BF16:
    return 1e-2;
  }
  return 0;
}

uint16_t floatToBF16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits += 0x7FFF + ((bits >> 16) & 1); // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

float bf16ToFloat(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// A dense row-major `[batch, heads, seq, head_dim]` array of `Elem` values
/// with its memref descriptor.
struct Heads {
  static constexpr int kRank = 4;
  Elem elem;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  StridedMemRefType<uint8_t, kRank> desc;

  Heads(Elem elem, std::vector<int64_t> shape)
      : elem(elem), shape(std::move(shape)) {
    int64_t n = 1;
    for (int64_t s : this->shape)
      n *= s;
    bytes.resize(n * byteSize(elem) + 1); // never empty
    desc.basePtr = desc.data = bytes.data();
    desc.offset = 0;
    int64_t stride = 1;
    for (int i = kRank - 1; i >= 0; --i) {
      desc.sizes[i] = this->shape[i];
      desc.strides[i] = stride;
      stride *= this->shape[i];
    }
  }

  int64_t size() const { return (bytes.size() - 1) / byteSize(elem); }

  double get(int64_t i) const {
    const uint8_t *p = bytes.data() + i * byteSize(elem);
    switch (elem) {
    case Elem::F32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case Elem::F16: {
      _Float16 h;
      std::memcpy(&h, p, 2);
      return static_cast<float>(h);
    }
    case Elem::BF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return bf16ToFloat(h);
    }
    }
    return 0;
  }

  void set(int64_t i, float f) {
    uint8_t *p = bytes.data() + i * byteSize(elem);
    switch (elem) {
    case Elem::F32:
      std::memcpy(p, &f, 4);
      break;
    case Elem::F16: {
      _Float16 h = static_cast<_Float16>(f);
      std::memcpy(p, &h, 2);
      break;
    }
    case Elem::BF16: {
      uint16_t h = floatToBF16(f);
      std::memcpy(p, &h, 2);
      break;
    }
    }
  }

  void fillRandom(std::mt19937_64 &rng, float lo, float hi) {
    std::uniform_real_distribution<float> dist(lo, hi);
    for (int64_t i = 0; i < size(); ++i)
      set(i, dist(rng));
  }

  void poison() {
    for (int64_t i = 0; i < size(); ++i)
      set(i, std::numeric_limits<float>::quiet_NaN());
  }

  /// Element [a, b, c, d].
  double at(int64_t a, int64_t b, int64_t c, int64_t d) const {
    return get(((a * shape[1] + b) * shape[2] + c) * shape[3] + d);
  }

  /// The argument a JIT-compiled function takes for this buffer.
  StridedMemRefType<uint8_t, kRank> *arg() { return &desc; }
};

/// A 1-d i32 buffer (positions, lengths).
struct Int32s {
  std::vector<int32_t> values;
  StridedMemRefType<int32_t, 1> desc;
  explicit Int32s(std::vector<int32_t> v) : values(std::move(v)) {
    if (values.empty())
      values.reserve(1);
    desc.basePtr = desc.data = values.data();
    desc.offset = 0;
    desc.sizes[0] = static_cast<int64_t>(values.size());
    desc.strides[0] = 1;
  }
};

/// float64 attention of one query row over keys `keyRow(j)` for j < n:
/// softmax(scale * q.k + maskAt(j)) . v.
std::vector<double> referenceRow(int64_t d, int64_t n, double scale,
                                 const std::function<double(int64_t)> &q,
                                 const std::function<double(int64_t, int64_t)> &k,
                                 const std::function<double(int64_t, int64_t)> &v,
                                 const std::function<double(int64_t)> &maskAt) {
  std::vector<double> out(d, 0.0);
  if (n <= 0)
    return out;
  std::vector<double> s(n);
  double max = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) {
    double dot = 0;
    for (int64_t x = 0; x < d; ++x)
      dot += q(x) * k(j, x);
    s[j] = dot * scale + maskAt(j);
    max = std::max(max, s[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < n; ++j)
    sum += (s[j] = std::exp(s[j] - max));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t x = 0; x < d; ++x)
      out[x] += s[j] / sum * v(j, x);
  return out;
}

/// ‖out − ref‖ / ‖ref‖ over all elements; NaN anywhere in `out` gives NaN.
double relativeError(const Heads &out, const std::vector<double> &ref) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < out.size(); ++i) {
    double o = out.get(i);
    if (std::isnan(o))
      return std::numeric_limits<double>::quiet_NaN();
    num += (o - ref[i]) * (o - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

uint64_t testSeed() {
  if (const char *env = std::getenv("KVC_TEST_SEED"); env && *env)
    return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

/// JIT-compiled modules, one per element type and head configuration, shared
/// by all tests (each shape is dynamic in batch and length). Freed by the
/// suite's teardown: an engine must not outlive LLVM's own statics, which
/// exit() destroys before function-local ones of this binary.
using ModuleKey = std::tuple<Elem, int64_t, int64_t, int64_t>;
std::map<ModuleKey, std::unique_ptr<CPUModule>> &compiledModules() {
  static std::map<ModuleKey, std::unique_ptr<CPUModule>> modules;
  return modules;
}

CPUModule &moduleFor(Elem elem, int64_t hq, int64_t hkv, int64_t d) {
  auto &slot = compiledModules()[{elem, hq, hkv, d}];
  if (slot)
    return *slot;
  std::string t = mlirName(elem);
  std::string qT = llvm::formatv("tensor<?x{0}x?x{1}x{2}>", hq, d, t);
  std::string kT = llvm::formatv("tensor<?x{0}x?x{1}x{2}>", hkv, d, t);
  std::string qM = llvm::formatv("memref<?x{0}x?x{1}x{2}>", hq, d, t);
  std::string cT = llvm::formatv("!kvc.cache<?x{0}x?x{1}x{2}>", hkv, d, t);
  std::string source = llvm::formatv(R"mlir(
func.func @causal(%q: {0}, %k: {1}, %v: {1}, %out: {2}) attributes {{llvm.emit_c_interface} {
  %o = kvc.attention %q, %k, %v {{causal} : {0}, {1}
  bufferization.materialize_in_destination %o in restrict writable %out : ({0}, {2}) -> ()
  return
}
func.func @masked(%q: {0}, %k: {1}, %v: {1}, %m: tensor<?x1x?x?x{4}>, %out: {2}) attributes {{llvm.emit_c_interface} {
  %o = kvc.attention %q, %k, %v mask(%m : tensor<?x1x?x?x{4}>) {{scale = 0.3 : f32} : {0}, {1}
  bufferization.materialize_in_destination %o in restrict writable %out : ({0}, {2}) -> ()
  return
}
func.func @decode(%kp: {1}, %vp: {1}, %kn: {1}, %vn: {1}, %q: {0}, %start: tensor<?xi32>,
                  %pos: tensor<?xi32>, %capacity: index, %out: {2}, %len: memref<?xi32>)
    attributes {{llvm.emit_c_interface} {
  %c0 = arith.constant 0 : index
  %b = tensor.dim %q, %c0 : {0}
  %c = kvc.cache.alloc(%b, %capacity) : {3}
  kvc.cache.append %c[%start], %kp, %vp : {3}, {1}
  kvc.cache.append %c[%pos], %kn, %vn : {3}, {1}
  %o = kvc.decode_attention %q, %c[%pos] : {0}, {3}
  %l = kvc.cache.length %c : {3}
  kvc.cache.dealloc %c : {3}
  bufferization.materialize_in_destination %o in restrict writable %out : ({0}, {2}) -> ()
  bufferization.materialize_in_destination %l in restrict writable %len : (tensor<?xi32>, memref<?xi32>) -> ()
  return
}
)mlir",
                                     qT, kT, qM, cT, t);
  std::string error;
  slot = CPUModule::compile(source, error);
  if (!slot) {
    ADD_FAILURE() << "kvc-cpu-pipeline failed:\n" << error << "\n" << source;
    std::abort();
  }
  return *slot;
}

struct Config {
  Elem elem;
  int64_t kvHeads; // query heads are 8: ratios 1, 4 and 8
  int64_t headDim;
};

std::string configName(const testing::TestParamInfo<Config> &info) {
  return llvm::formatv("{0}_Hkv{1}_D{2}", mlirName(info.param.elem),
                       info.param.kvHeads, info.param.headDim);
}

constexpr int64_t kQueryHeads = 8;

class CPUReference : public testing::TestWithParam<Config> {
protected:
  static void TearDownTestSuite() { compiledModules().clear(); }
  void SetUp() override {
    seed = testSeed();
    rng.seed(seed);
  }
  int64_t uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  }
  uint64_t seed;
  std::mt19937_64 rng;
};

/// Full-sequence causal attention at a random length in [1, 300], and at 1.
TEST_P(CPUReference, CausalAttention) {
  auto [elem, hkv, d] = GetParam();
  CPUModule &module = moduleFor(elem, kQueryHeads, hkv, d);
  for (int64_t s : {int64_t(1), uniform(2, 300)}) {
    SCOPED_TRACE(llvm::formatv("seed {0}, length {1}", seed, s).str());
    int64_t b = 2, group = kQueryHeads / hkv;
    Heads q(elem, {b, kQueryHeads, s, d}), k(elem, {b, hkv, s, d}),
        v(elem, {b, hkv, s, d}), out(elem, {b, kQueryHeads, s, d});
    q.fillRandom(rng, -2, 2);
    k.fillRandom(rng, -2, 2);
    v.fillRandom(rng, -1, 1);
    out.poison();
    llvm::Error err = module.engine().invoke("causal", q.arg(), k.arg(), v.arg(), out.arg());
    ASSERT_FALSE(err) << llvm::toString(std::move(err));

    std::vector<double> ref;
    double scale = 1.0 / std::sqrt(static_cast<double>(d));
    for (int64_t bi = 0; bi < b; ++bi)
      for (int64_t h = 0; h < kQueryHeads; ++h)
        for (int64_t i = 0; i < s; ++i) {
          auto row = referenceRow(
              d, i + 1, scale, [&](int64_t x) { return q.at(bi, h, i, x); },
              [&](int64_t j, int64_t x) { return k.at(bi, h / group, j, x); },
              [&](int64_t j, int64_t x) { return v.at(bi, h / group, j, x); },
              [](int64_t) { return 0.0; });
          ref.insert(ref.end(), row.begin(), row.end());
        }
    EXPECT_LT(relativeError(out, ref), tolerance(elem));
  }
}

/// Non-causal attention with an additive mask shared by all heads, query and
/// key lengths differing, and an explicit scale.
TEST_P(CPUReference, MaskedAttention) {
  auto [elem, hkv, d] = GetParam();
  CPUModule &module = moduleFor(elem, kQueryHeads, hkv, d);
  int64_t b = 2, sq = uniform(1, 40), skv = uniform(1, 120);
  int64_t group = kQueryHeads / hkv;
  SCOPED_TRACE(llvm::formatv("seed {0}, Sq {1}, Skv {2}", seed, sq, skv).str());
  Heads q(elem, {b, kQueryHeads, sq, d}), k(elem, {b, hkv, skv, d}),
      v(elem, {b, hkv, skv, d}), mask(elem, {b, 1, sq, skv}),
      out(elem, {b, kQueryHeads, sq, d});
  q.fillRandom(rng, -2, 2);
  k.fillRandom(rng, -2, 2);
  v.fillRandom(rng, -1, 1);
  mask.fillRandom(rng, -4, 0);
  out.poison();
  llvm::Error err = module.engine().invoke("masked", q.arg(), k.arg(), v.arg(),
                                            mask.arg(), out.arg());
  ASSERT_FALSE(err) << llvm::toString(std::move(err));

  std::vector<double> ref;
  double scale = static_cast<double>(0.3f);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t h = 0; h < kQueryHeads; ++h)
      for (int64_t i = 0; i < sq; ++i) {
        auto row = referenceRow(
            d, skv, scale, [&](int64_t x) { return q.at(bi, h, i, x); },
            [&](int64_t j, int64_t x) { return k.at(bi, h / group, j, x); },
            [&](int64_t j, int64_t x) { return v.at(bi, h / group, j, x); },
            [&](int64_t j) { return mask.at(bi, 0, i, j); });
        ref.insert(ref.end(), row.begin(), row.end());
      }
  EXPECT_LT(relativeError(out, ref), tolerance(elem));
}

/// A ragged batch: a prefix of P rows is appended to every sequence, then T
/// new rows at per-sequence positions in [0, P] (overwriting the prefix
/// beyond them), and the T new queries attend over the cache.
TEST_P(CPUReference, RaggedDecodeAttention) {
  auto [elem, hkv, d] = GetParam();
  CPUModule &module = moduleFor(elem, kQueryHeads, hkv, d);
  int64_t group = kQueryHeads / hkv;
  for (int64_t t : {1, 4}) {
    int64_t b = 3, p = uniform(1, 300), capacity = p + t + uniform(0, 7);
    std::vector<int32_t> positions(b);
    for (auto &pos : positions)
      pos = static_cast<int32_t>(uniform(0, p));
    positions[0] = static_cast<int32_t>(p); // one sequence is full length
    SCOPED_TRACE(
        llvm::formatv("seed {0}, P {1}, T {2}, capacity {3}", seed, p, t, capacity)
            .str());
    Heads kp(elem, {b, hkv, p, d}), vp(elem, {b, hkv, p, d}),
        kn(elem, {b, hkv, t, d}), vn(elem, {b, hkv, t, d}),
        q(elem, {b, kQueryHeads, t, d}), out(elem, {b, kQueryHeads, t, d});
    for (Heads *x : {&kp, &kn, &q})
      x->fillRandom(rng, -2, 2);
    for (Heads *x : {&vp, &vn})
      x->fillRandom(rng, -1, 1);
    out.poison();
    Int32s start(std::vector<int32_t>(b, 0)), pos(positions),
        lengths(std::vector<int32_t>(b, -1));
    llvm::Error err = module.engine().invoke(
        "decode", kp.arg(), vp.arg(), kn.arg(), vn.arg(), q.arg(), &start.desc,
        &pos.desc, capacity, out.arg(), &lengths.desc);
    ASSERT_FALSE(err) << llvm::toString(std::move(err));

    std::vector<double> ref;
    double scale = 1.0 / std::sqrt(static_cast<double>(d));
    for (int64_t bi = 0; bi < b; ++bi) {
      int64_t at = positions[bi];
      EXPECT_EQ(lengths.values[bi], at + t) << "sequence " << bi;
      // The sequence as the cache holds it: prefix rows below `at`, then
      // the new rows.
      auto row = [&](const Heads &prefix, const Heads &fresh, int64_t h,
                     int64_t j, int64_t x) {
        return j < at ? prefix.at(bi, h, j, x) : fresh.at(bi, h, j - at, x);
      };
      for (int64_t h = 0; h < kQueryHeads; ++h)
        for (int64_t i = 0; i < t; ++i) {
          auto r = referenceRow(
              d, at + i + 1, scale, [&](int64_t x) { return q.at(bi, h, i, x); },
              [&](int64_t j, int64_t x) { return row(kp, kn, h / group, j, x); },
              [&](int64_t j, int64_t x) { return row(vp, vn, h / group, j, x); },
              [](int64_t) { return 0.0; });
          ref.insert(ref.end(), r.begin(), r.end());
        }
    }
    EXPECT_LT(relativeError(out, ref), tolerance(elem));
  }
}

std::vector<Config> allConfigs() {
  std::vector<Config> configs;
  for (Elem elem : {Elem::F32, Elem::F16, Elem::BF16})
    for (int64_t hkv : {8, 2, 1})
      for (int64_t d : {64, 128})
        configs.push_back({elem, hkv, d});
  return configs;
}

INSTANTIATE_TEST_SUITE_P(Grid, CPUReference, testing::ValuesIn(allConfigs()),
                         configName);

} // namespace
