//===- kvc-run.cpp - generate tokens with a model kvc-compile built -------===//
//
// Loads an artifact (manifest.json, the model's host code as a shared
// library, and for CUDA the kernel library), checks a safetensors checkpoint
// against the manifest, runs prefill on a batch of prompts and then decodes
// token by token, greedy or sampled. On the GPU every decode step after the
// first is replayed from a CUDA graph, greedy ones queued a step ahead of
// reading their tokens.
//
// The GPU runtime (libkvc_rt.so) is loaded only for CUDA artifacts, so that
// kvc-run runs CPU artifacts on machines without a GPU driver.
//
// The entry points are called through packed wrappers kvc-compile adds:
// `_kvc_<name>(void **args)`, one pointer per 64-bit word of the lowered
// signature (a rank-r memref is 3 + 2r words: two pointers, offset, sizes,
// strides; an index or a cache handle one) and a last one to the results.
//
//===----------------------------------------------------------------------===//
#include "kvc/rt/SafeTensors.h"
#include "kvc/rt/kvc_rt.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace kvc::rt;
using Word = uint64_t;

namespace {

const char *kUsage = R"(usage: kvc-run ARTIFACT --weights PATH (--prompt IDS)... [options]

Generates tokens with a model compiled by kvc-compile (ARTIFACT is the
directory it wrote). PATH is a .safetensors file or a directory of them.

  --prompt IDS          token ids of one prompt, comma separated; repeat for
                        a batch
  --prompts FILE        one prompt per line (ids separated by spaces/commas)
  --max-new-tokens N    tokens to generate per prompt (default 32)
  --max-context N       cache capacity per sequence (default: longest
                        prompt + N new tokens)
  --batch N             sequences the caches hold (default: the prompts);
                        more prompts than that is an error, fewer are
                        filled up with copies of the last one
  --temperature T       0 (default) is greedy; else sample from softmax(l/T)
  --top-k K             sample among the K most likely tokens (0: all)
  --top-p P             ... among the fewest whose probability reaches P
  --seed S              sampling seed (default 0)
  --no-graph            run every decode step eagerly (GPU)
  --warmup              run prefill once, untimed, before the timed one:
                        the prefill time is then the steady state, without
                        the one-time setup (kernel loading, cuBLASLt plans,
                        allocations)
  --logits FILE         write each step's logits, f32 [steps, batch, vocab]
  --quiet               no per-step token lines
  --device N            GPU ordinal (default 0)
  --runtime FILE        the GPU runtime (default: ../lib/libkvc_rt.so next
                        to kvc-run)
)";

[[noreturn]] void die(const std::string &message) {
  std::fprintf(stderr, "kvc-run: error: %s\n", message.c_str());
  std::exit(1);
}

std::string readFile(const std::string &path) {
  std::ifstream file(path, std::ios::binary);
  if (!file)
    die("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(file)),
                     std::istreambuf_iterator<char>());
}

struct Options {
  std::string artifact, weights, logitsPath, runtime;
  std::vector<std::vector<int32_t>> prompts;
  int64_t maxNew = 32, maxContext = 0, batch = 0, topK = 0, device = 0;
  double temperature = 0, topP = 1;
  uint64_t seed = 0;
  bool graph = true, quiet = false, warmup = false;
};

std::vector<int32_t> parseIds(const std::string &text, const std::string &what) {
  std::vector<int32_t> ids;
  std::string token;
  std::stringstream in(text);
  while (in >> std::ws && std::getline(in, token, ',')) {
    std::stringstream words(token);
    std::string word;
    while (words >> word) {
      char *end = nullptr;
      long long v = std::strtoll(word.c_str(), &end, 10);
      if (*end || v < 0 || v > INT32_MAX)
        die(what + ": '" + word + "' is not a token id");
      ids.push_back(static_cast<int32_t>(v));
    }
  }
  if (ids.empty())
    die(what + " is empty");
  return ids;
}

Options parseOptions(int argc, char **argv) {
  Options o;
  auto number = [&](int &i, const char *flag) -> std::string {
    if (i + 1 >= argc)
      die(std::string(flag) + " needs a value");
    return argv[++i];
  };
  auto integer = [&](int &i, const char *flag, int64_t min) {
    std::string v = number(i, flag);
    char *end = nullptr;
    long long x = std::strtoll(v.c_str(), &end, 10);
    if (*end || v.empty() || x < min)
      die(std::string(flag) + " must be an integer >= " + std::to_string(min) +
          ", found '" + v + "'");
    return static_cast<int64_t>(x);
  };
  auto real = [&](int &i, const char *flag) {
    std::string v = number(i, flag);
    char *end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    if (*end || v.empty() || !(x >= 0))
      die(std::string(flag) + " must be a number >= 0, found '" + v + "'");
    return x;
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--weights")
      o.weights = number(i, "--weights");
    else if (a == "--prompt")
      o.prompts.push_back(parseIds(number(i, "--prompt"), "--prompt"));
    else if (a == "--prompts") {
      std::stringstream lines(readFile(number(i, "--prompts")));
      std::string line;
      for (int n = 1; std::getline(lines, line); ++n)
        if (line.find_first_not_of(" \t\r") != std::string::npos)
          o.prompts.push_back(parseIds(line, "prompt line " + std::to_string(n)));
    } else if (a == "--max-new-tokens")
      o.maxNew = integer(i, "--max-new-tokens", 1);
    else if (a == "--max-context")
      o.maxContext = integer(i, "--max-context", 1);
    else if (a == "--batch")
      o.batch = integer(i, "--batch", 1);
    else if (a == "--temperature")
      o.temperature = real(i, "--temperature");
    else if (a == "--top-k")
      o.topK = integer(i, "--top-k", 0);
    else if (a == "--top-p") {
      o.topP = real(i, "--top-p");
      if (o.topP <= 0 || o.topP > 1)
        die("--top-p must lie in (0, 1]");
    } else if (a == "--seed")
      o.seed = static_cast<uint64_t>(integer(i, "--seed", 0));
    else if (a == "--no-graph")
      o.graph = false;
    else if (a == "--warmup")
      o.warmup = true;
    else if (a == "--logits")
      o.logitsPath = number(i, "--logits");
    else if (a == "--quiet")
      o.quiet = true;
    else if (a == "--runtime")
      o.runtime = number(i, "--runtime");
    else if (a == "--device")
      o.device = integer(i, "--device", 0);
    else if (!a.empty() && a[0] == '-')
      die("unknown option " + a + " (see --help)");
    else if (o.artifact.empty())
      o.artifact = a;
    else
      die("unexpected argument " + a);
  }
  if (o.artifact.empty() || o.weights.empty() || o.prompts.empty())
    die("an artifact, --weights and at least one --prompt are needed (see "
        "--help)");
  return o;
}

/// Where the model's buffers live, and how data gets in and out.
class Backend {
public:
  virtual ~Backend() = default;
  /// A buffer holding `bytes` of `data`; `persistent` ones (weights) may
  /// alias `data`.
  virtual Word upload(const void *data, int64_t bytes, bool persistent) = 0;
  virtual void write(Word dst, const void *src, int64_t bytes) = 0;
  /// Copies between two buffers of this backend, in order with its work.
  virtual void copy(Word dst, Word src, int64_t bytes) = 0;
  virtual void read(void *dst, Word src, int64_t bytes) = 0;
  /// A buffer the model returned or upload made.
  virtual void release(Word ptr) = 0;
  /// Waits for the work so far and dies on a failure it reports.
  virtual void finish(const char *what) = 0;
  /// Greedy choice on the device: out[r] = argmax of logits row r. False
  /// if this backend leaves it to the host.
  virtual bool argmax(Word logits, int64_t rows, int64_t vocab, bool bf16,
                      Word out) {
    return false;
  }
  /// Reading a step's tokens while the next one runs: stage() starts
  /// copying `bytes` at `src` into slot `slot` (0 or 1) after the work so
  /// far and returns; staged() waits for that copy. Where canStage() is
  /// false, results are read with read() after each step.
  virtual bool canStage() const { return false; }
  virtual void stage(int slot, Word src, int64_t bytes) {}
  virtual const void *staged(int slot) { return nullptr; }
  virtual bool canCapture() const { return false; }
  virtual void beginCapture() {}
  virtual void *endCapture() { return nullptr; }
  virtual void replay(void *) {}
  /// Frees the caches a model returned (`count` words); the CPU's live
  /// until exit.
  virtual void freeCaches(const Word *, int64_t) {}
};

class CPUBackend : public Backend {
public:
  Word upload(const void *data, int64_t bytes, bool persistent) override {
    if (persistent)
      return reinterpret_cast<Word>(data);
    void *copy = std::malloc(std::max<int64_t>(bytes, 1));
    std::memcpy(copy, data, bytes);
    return reinterpret_cast<Word>(copy);
  }
  void write(Word dst, const void *src, int64_t bytes) override {
    std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
  }
  void read(void *dst, Word src, int64_t bytes) override {
    std::memcpy(dst, reinterpret_cast<const void *>(src), bytes);
  }
  void copy(Word dst, Word src, int64_t bytes) override {
    std::memcpy(reinterpret_cast<void *>(dst),
                reinterpret_cast<const void *>(src), bytes);
  }
  void release(Word ptr) override { std::free(reinterpret_cast<void *>(ptr)); }
  void finish(const char *) override {}
};

/// The GPU runtime's C API, loaded with dlopen.
struct Runtime {
#define KVC_RT_FUNCTIONS(X)                                                    \
  X(kvc_rt_error) X(kvc_rt_open_file) X(kvc_rt_close) X(kvc_rt_make_current)   \
  X(kvc_rt_alloc) X(kvc_rt_free) X(kvc_rt_copy_to_device)                      \
  X(kvc_rt_copy_to_host) X(kvc_rt_synchronize) X(kvc_rt_begin_capture)        \
  X(kvc_rt_end_capture) X(kvc_rt_replay) X(kvc_rt_graph_destroy)              \
  X(kvc_rt_op_cache_free) X(kvc_rt_argmax) X(kvc_rt_stage_to_host)           \
  X(kvc_rt_staged) X(kvc_rt_copy_on_device)
#define KVC_RT_MEMBER(name) decltype(&::name) name = nullptr;
  KVC_RT_FUNCTIONS(KVC_RT_MEMBER)
#undef KVC_RT_MEMBER

  explicit Runtime(const std::string &path) {
    // Global: the model library resolves kvc_rt_op_* and mgpu* in it.
    void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!handle)
      die("cannot load the GPU runtime " + path + ": " + dlerror() +
          " (--runtime names it)");
#define KVC_RT_LOAD(name)                                                      \
  name = reinterpret_cast<decltype(name)>(dlsym(handle, #name));               \
  if (!name)                                                                   \
    die(path + " lacks " #name);
    KVC_RT_FUNCTIONS(KVC_RT_LOAD)
#undef KVC_RT_LOAD
  }
};

class CUDABackend : public Backend {
public:
  CUDABackend(const std::string &runtime, int ordinal,
              const std::string &kernels)
      : rt(runtime) {
    if (rt.kvc_rt_open_file(ordinal, kernels.c_str(), &device_))
      die(rt.kvc_rt_error(nullptr));
    rt.kvc_rt_make_current(device_);
  }
  ~CUDABackend() override {
    if (graph_)
      rt.kvc_rt_graph_destroy(device_, graph_);
    rt.kvc_rt_close(device_);
  }
  Word upload(const void *data, int64_t bytes, bool) override {
    Word ptr = 0;
    if (rt.kvc_rt_alloc(device_, bytes, &ptr) ||
        rt.kvc_rt_copy_to_device(device_, ptr, data, bytes))
      die(rt.kvc_rt_error(device_));
    return ptr;
  }
  void write(Word dst, const void *src, int64_t bytes) override {
    if (rt.kvc_rt_copy_to_device(device_, dst, src, bytes))
      die(rt.kvc_rt_error(device_));
  }
  void read(void *dst, Word src, int64_t bytes) override {
    if (rt.kvc_rt_copy_to_host(device_, dst, src, bytes))
      die(rt.kvc_rt_error(device_));
  }
  void copy(Word dst, Word src, int64_t bytes) override {
    if (rt.kvc_rt_copy_on_device(device_, dst, src, bytes))
      die(rt.kvc_rt_error(device_));
  }
  void release(Word ptr) override { rt.kvc_rt_free(device_, ptr); }
  void finish(const char *what) override {
    if (!*rt.kvc_rt_error(device_) && rt.kvc_rt_synchronize(device_) == 0)
      return;
    die(std::string(what) + ": " + rt.kvc_rt_error(device_));
  }
  bool argmax(Word logits, int64_t rows, int64_t vocab, bool bf16,
              Word out) override {
    if (rt.kvc_rt_argmax(device_, logits, rows, vocab,
                         bf16 ? KVC_RT_BF16 : KVC_RT_F32, out))
      die(rt.kvc_rt_error(device_));
    return true;
  }
  bool canStage() const override { return true; }
  void stage(int slot, Word src, int64_t bytes) override {
    if (rt.kvc_rt_stage_to_host(device_, slot, src, bytes))
      die(rt.kvc_rt_error(device_));
  }
  const void *staged(int slot) override {
    const void *data = nullptr;
    if (rt.kvc_rt_staged(device_, slot, &data))
      die(std::string("decode: ") + rt.kvc_rt_error(device_));
    return data;
  }
  bool canCapture() const override { return true; }
  void beginCapture() override {
    if (rt.kvc_rt_begin_capture(device_))
      die(rt.kvc_rt_error(device_));
  }
  void *endCapture() override {
    if (rt.kvc_rt_end_capture(device_, &graph_))
      die(std::string("capturing the decode step: ") +
          rt.kvc_rt_error(device_));
    return graph_;
  }
  void replay(void *graph) override {
    if (rt.kvc_rt_replay(device_, graph))
      die(rt.kvc_rt_error(device_));
  }
  void freeCaches(const Word *words, int64_t count) override {
    for (int64_t i = 0; i < count; ++i)
      rt.kvc_rt_op_cache_free(reinterpret_cast<void *>(words[i]));
  }

private:
  Runtime rt;
  kvc_rt_device *device_ = nullptr;
  void *graph_ = nullptr;
};

/// The words of a row-major memref descriptor.
void pushMemRef(std::vector<Word> &words, Word ptr,
                const std::vector<int64_t> &shape) {
  words.push_back(ptr);
  words.push_back(ptr);
  words.push_back(0);
  for (int64_t d : shape)
    words.push_back(static_cast<Word>(d));
  int64_t stride = 1;
  std::vector<Word> strides(shape.size());
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = static_cast<Word>(stride);
    stride *= shape[i];
  }
  words.insert(words.end(), strides.begin(), strides.end());
}

using Packed = void (*)(void **);

/// Calls a packed entry point: `results` receives its result words.
void call(Packed entry, std::vector<Word> &args, std::vector<Word> &results) {
  std::vector<void *> pointers;
  for (Word &w : args)
    pointers.push_back(&w);
  pointers.push_back(results.data());
  entry(pointers.data());
}

float bf16ToFloat(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof(f));
  return f;
}

float f16ToFloat(uint16_t h) {
  uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0    ? std::ldexp(static_cast<float>(man), -24)
            : exp == 31 ? (man ? NAN : INFINITY)
                        : std::ldexp(static_cast<float>(man | 1024), exp - 25);
  return sign ? -v : v;
}

int32_t sample(const float *logits, int64_t vocab, const Options &o,
               std::mt19937_64 &rng) {
  if (o.temperature <= 0)
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) -
                                logits);
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = o.topK > 0 ? std::min(o.topK, vocab) : vocab;
  std::vector<double> probs(keep);
  double top = logits[order[0]], sum = 0;
  for (int64_t i = 0; i < keep; ++i)
    sum += probs[i] = std::exp((logits[order[i]] - top) / o.temperature);
  double mass = 0;
  for (int64_t i = 0; i < keep; ++i) {
    mass += probs[i] / sum;
    if (mass >= o.topP) {
      keep = i + 1;
      break;
    }
  }
  std::discrete_distribution<int64_t> pick(probs.begin(), probs.begin() + keep);
  return order[pick(rng)];
}

double msSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

} // namespace

int main(int argc, char **argv) {
  Options o = parseOptions(argc, argv);
  std::string manifestPath = o.artifact + "/manifest.json", error;
  Manifest manifest;
  if (!parseManifest(readFile(manifestPath), manifest, error))
    die(manifestPath + ": " + error);
  auto integer = [&](const char *key) {
    auto it = manifest.integers.find(key);
    if (it == manifest.integers.end() || it->second < 0)
      die(manifestPath + " has no '" + key + "'");
    return it->second;
  };
  // What this kvc-run assumes of an artifact (kvc::kArtifactFormat in
  // kvc-compile): its kernels wait for the ones before them on the device.
  const std::string kFormat = "kvc-model-2";
  if (manifest.strings["format"] != kFormat)
    die(o.artifact + " is of artifact format '" + manifest.strings["format"] +
        "'; this kvc-run reads '" + kFormat +
        "': compile it again with this kvc-compile");
  std::string target = manifest.strings["target"];
  int64_t vocab = integer("vocab_size"), cacheWords = integer("cache_words");
  std::string logitsType = manifest.strings["logits_dtype"];
  int64_t logitsBytes = dtypeBytes(logitsType);
  if (!logitsBytes)
    die(manifestPath + ": unknown logits_dtype '" + logitsType + "'");

  // Prompts and capacity, before anything is loaded.
  int64_t batch = static_cast<int64_t>(o.prompts.size());
  if (o.batch && batch > o.batch)
    die(std::to_string(batch) + " prompts do not fit a batch of " +
        std::to_string(o.batch) + " (--batch)");
  if (o.batch)
    batch = o.batch;
  while (static_cast<int64_t>(o.prompts.size()) < batch)
    o.prompts.push_back(o.prompts.back());
  int64_t longest = 0;
  for (size_t b = 0; b < o.prompts.size(); ++b) {
    longest = std::max<int64_t>(longest, o.prompts[b].size());
    for (int32_t id : o.prompts[b])
      if (id >= vocab)
        die("prompt " + std::to_string(b) + ": token id " + std::to_string(id) +
            " is not below the vocabulary size " + std::to_string(vocab));
  }
  int64_t capacity = o.maxContext ? o.maxContext : longest + o.maxNew;
  if (longest + o.maxNew > capacity)
    die("a prompt of " + std::to_string(longest) + " tokens and " +
        std::to_string(o.maxNew) + " new ones do not fit a context of " +
        std::to_string(capacity) + " (--max-context)");

  std::unique_ptr<SafeTensors> weights = SafeTensors::open(o.weights, error);
  if (!weights)
    die(error);
  std::string problems = weights->check(manifest.weights);
  if (!problems.empty())
    die(o.weights + " does not match " + manifestPath + ":\n" + problems);

  std::unique_ptr<Backend> backend;
  if (target == "cpu") {
    backend = std::make_unique<CPUBackend>();
  } else if (target == "cuda") {
    std::string runtime = o.runtime;
    if (runtime.empty()) {
      char self[4096];
      ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
      std::string exe = n > 0 ? std::string(self, n) : "";
      runtime = exe.substr(0, exe.rfind('/')) + "/../lib/libkvc_rt.so";
    }
    backend = std::make_unique<CUDABackend>(
        runtime, static_cast<int>(o.device),
        o.artifact + "/" + manifest.strings["kernels"]);
  } else {
    die(manifestPath + ": unknown target '" + target + "'");
  }

  // Loading the library loads its kernels (on the device made current).
  std::string library = o.artifact + "/" + manifest.strings["library"];
  void *handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    die(std::string("cannot load the model: ") + dlerror());
  backend->finish("loading the model's kernels");
  auto prefill = reinterpret_cast<Packed>(dlsym(handle, "_kvc_model_prefill"));
  auto decode = reinterpret_cast<Packed>(dlsym(handle, "_kvc_model_decode"));
  if (!prefill || !decode)
    die(library + " lacks _kvc_model_prefill or _kvc_model_decode");

  std::vector<Word> weightWords;
  for (const WeightSpec &spec : manifest.weights) {
    if (spec.parts.empty()) {
      const WeightView *view = weights->find(spec.name);
      pushMemRef(weightWords, backend->upload(view->data, view->bytes, true),
                 spec.shape);
      continue;
    }
    // A packed weight: its parts stacked along the rows.
    std::vector<uint8_t> packed;
    for (const WeightSpec &part : spec.parts) {
      const WeightView *view = weights->find(part.name);
      packed.insert(packed.end(), view->data, view->data + view->bytes);
    }
    pushMemRef(weightWords,
               backend->upload(packed.data(), packed.size(), false),
               spec.shape);
  }

  // Prefill: the prompts padded to the longest.
  std::vector<int32_t> tokens(batch * longest, 0), lengths(batch);
  for (int64_t b = 0; b < batch; ++b) {
    std::copy(o.prompts[b].begin(), o.prompts[b].end(),
              tokens.begin() + b * longest);
    lengths[b] = static_cast<int32_t>(o.prompts[b].size());
  }
  Word tokensBuf = backend->upload(tokens.data(), tokens.size() * 4, false);
  Word lengthsBuf = backend->upload(lengths.data(), batch * 4, false);
  std::vector<Word> args;
  pushMemRef(args, tokensBuf, {batch, longest});
  args.insert(args.end(), weightWords.begin(), weightWords.end());
  pushMemRef(args, lengthsBuf, {batch});
  args.push_back(static_cast<Word>(capacity));
  const int64_t logitsWords = 3 + 2 * 3;
  if (static_cast<int64_t>(args.size()) != integer("prefill_words"))
    die("the prefill entry point takes " +
        std::to_string(integer("prefill_words")) + " words, kvc-run passes " +
        std::to_string(args.size()) + " (artifact and kvc-run disagree)");
  std::vector<Word> results(logitsWords + cacheWords);
  if (o.warmup) {
    call(prefill, args, results);
    backend->finish("prefill (warm-up)");
    backend->release(results[0]);
    backend->freeCaches(results.data() + logitsWords, cacheWords);
  }
  auto start = std::chrono::steady_clock::now();
  call(prefill, args, results);
  backend->finish("prefill");
  double prefillMs = msSince(start);
  backend->release(tokensBuf);
  backend->release(lengthsBuf);
  std::vector<Word> caches(results.begin() + logitsWords, results.end());

  std::FILE *logitsFile = nullptr;
  if (!o.logitsPath.empty() && !(logitsFile = std::fopen(o.logitsPath.c_str(), "wb")))
    die("cannot write " + o.logitsPath);
  std::vector<uint8_t> raw(batch * vocab * logitsBytes);
  std::vector<float> logits(batch * vocab);
  std::vector<int32_t> chosen(batch);
  std::vector<std::vector<int32_t>> generated(batch);
  std::mt19937_64 rng(o.seed);
  // Greedy decoding picks tokens on the device where it can: only the
  // tokens come back, straight into the next step's input.
  bool bf16 = logitsType == "BF16";
  Word chosenBuf = backend->upload(chosen.data(), batch * 4, false);
  auto pick = [&](Word logitsPtr) {
    return o.temperature <= 0 &&
           backend->argmax(logitsPtr, batch, vocab, bf16, chosenBuf);
  };
  // A step's tokens: kept and printed.
  auto emit = [&](const int32_t *tokens) {
    std::string line = "step " + std::to_string(generated[0].size()) + ":";
    for (int64_t b = 0; b < batch; ++b) {
      generated[b].push_back(tokens[b]);
      line += " " + std::to_string(tokens[b]);
    }
    if (!o.quiet)
      std::printf("%s\n", line.c_str()), std::fflush(stdout);
  };
  auto next = [&](Word logitsPtr, bool picked) {
    if (logitsFile || !picked) {
      backend->read(raw.data(), logitsPtr, raw.size());
      for (int64_t i = 0; i < batch * vocab; ++i) {
        uint16_t half;
        if (logitsBytes == 4) {
          std::memcpy(&logits[i], raw.data() + 4 * i, 4);
        } else {
          std::memcpy(&half, raw.data() + 2 * i, 2);
          logits[i] = bf16 ? bf16ToFloat(half) : f16ToFloat(half);
        }
      }
      if (logitsFile)
        std::fwrite(logits.data(), 4, logits.size(), logitsFile);
    }
    if (picked)
      backend->read(chosen.data(), chosenBuf, batch * 4);
    else
      for (int64_t b = 0; b < batch; ++b)
        chosen[b] = sample(&logits[b * vocab], vocab, o, rng);
    emit(chosen.data());
  };
  bool picked = pick(results[1]);
  backend->finish("prefill");
  next(results[1], picked);
  backend->release(results[0]);

  // Decode: one row per sequence at its position, from fixed buffers so
  // that a captured step can be replayed. Tokens chosen on the device are
  // already where the next step reads them.
  // Every step's positions go up at once; a step copies its own into the
  // buffer the step reads, on the device (no host copy to wait on).
  std::vector<int32_t> step(batch), positions(o.maxNew * batch);
  for (int64_t i = 0; i < o.maxNew; ++i)
    for (int64_t b = 0; b < batch; ++b)
      positions[i * batch + b] = lengths[b] + static_cast<int32_t>(i) - 1;
  Word stepBuf = picked ? chosenBuf
                        : backend->upload(step.data(), batch * 4, false);
  Word allPositions =
      backend->upload(positions.data(), positions.size() * 4, false);
  Word positionsBuf = backend->upload(positions.data(), batch * 4, false);
  args.clear();
  pushMemRef(args, stepBuf, {batch, 1});
  args.insert(args.end(), weightWords.begin(), weightWords.end());
  pushMemRef(args, positionsBuf, {batch});
  args.insert(args.end(), caches.begin(), caches.end());
  if (static_cast<int64_t>(args.size()) != integer("decode_words"))
    die("the decode entry point takes " +
        std::to_string(integer("decode_words")) + " words, kvc-run passes " +
        std::to_string(args.size()));
  std::vector<Word> out(logitsWords);
  void *graph = nullptr;
  bool useGraph = o.graph && backend->canCapture();
  // Greedy steps replayed from the graph run one ahead of the host: step i
  // is queued with a copy of its tokens into a staging slot before step
  // i - 1's tokens are read, so the device does not wait on the host
  // between steps.
  bool pipelined = useGraph && picked && !logitsFile && backend->canStage();
  int64_t staged = 0; // the step whose tokens wait in a slot, 0 if none
  auto drain = [&] {
    if (staged)
      emit(static_cast<const int32_t *>(backend->staged(staged % 2)));
    staged = 0;
  };
  // Timed: the steady state, from the step after the captured one.
  const int64_t firstTimed = useGraph ? 3 : 1;
  auto timedFrom = std::chrono::steady_clock::now();
  for (int64_t i = 1; i < o.maxNew; ++i) {
    if (i == firstTimed) {
      drain();
      timedFrom = std::chrono::steady_clock::now();
    }
    if (!picked) {
      for (int64_t b = 0; b < batch; ++b)
        step[b] = generated[b].back();
      backend->write(stepBuf, step.data(), batch * 4);
    }
    backend->copy(positionsBuf, allPositions + i * batch * 4, batch * 4);
    if (graph) {
      backend->replay(graph);
    } else if (useGraph && i >= 2) {
      // Step 1 ran eagerly: buffers and cuBLASLt plans exist; capture now.
      backend->beginCapture();
      call(decode, args, out);
      pick(out[1]);
      graph = backend->endCapture();
      backend->replay(graph);
    } else {
      call(decode, args, out);
      pick(out[1]);
    }
    if (pipelined && graph) {
      backend->stage(i % 2, chosenBuf, batch * 4);
      drain();
      staged = i;
    } else {
      backend->finish("decode");
      next(out[1], picked);
    }
    if (!graph)
      backend->release(out[0]);
  }
  drain();
  backend->finish("decode");
  double decodeMs = msSince(timedFrom);
  int64_t timedSteps = std::max<int64_t>(0, o.maxNew - firstTimed);
  if (logitsFile)
    std::fclose(logitsFile);

  for (int64_t b = 0; b < batch; ++b) {
    std::printf("sequence %lld:", static_cast<long long>(b));
    for (int32_t t : o.prompts[b])
      std::printf(" %d", t);
    std::printf(" |");
    for (int32_t t : generated[b])
      std::printf(" %d", t);
    std::printf("\n");
  }
  int64_t promptTokens = 0;
  for (int32_t l : lengths)
    promptTokens += l;
  std::printf("prefill: %.3f ms (%lld sequences, %lld prompt tokens, %.0f "
              "tokens/s)\n",
              prefillMs, static_cast<long long>(batch),
              static_cast<long long>(promptTokens),
              promptTokens / (prefillMs / 1e3));
  if (timedSteps) {
    double perStep = decodeMs / timedSteps;
    std::printf("decode: %.3f ms/step over %lld steps%s, %.0f tokens/s\n",
                perStep, static_cast<long long>(timedSteps),
                useGraph ? " (CUDA graph)" : "", batch / (perStep / 1e3));
  }
  if (graph)
    backend->release(out[0]);
  backend->freeCaches(caches.data(), cacheWords);
  return 0;
}
