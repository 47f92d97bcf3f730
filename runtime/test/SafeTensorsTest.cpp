//===- SafeTensorsTest.cpp - reading safetensors weight files --------------===//
#include "kvc/rt/SafeTensors.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace kvc::rt;

namespace {

/// A scratch directory for the test's files, removed afterwards.
class SafeTensorsTest : public ::testing::Test {
protected:
  void SetUp() override {
    char pattern[] = "/tmp/kvc-safetensors-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir = pattern;
  }
  void TearDown() override {
    for (const std::string &f : files)
      std::remove(f.c_str());
    rmdir(dir.c_str());
  }
  /// Writes a safetensors file: the header's length, the header, the data.
  std::string write(const std::string &name, const std::string &header,
                    const std::string &data, int64_t claimedLength = -1) {
    std::string path = dir + "/" + name;
    std::ofstream out(path, std::ios::binary);
    uint64_t n = claimedLength < 0 ? header.size() : claimedLength;
    for (int i = 0; i < 8; ++i)
      out.put(static_cast<char>((n >> (8 * i)) & 0xff));
    out << header << data;
    files.push_back(path);
    return path;
  }
  static std::string floats(std::initializer_list<float> values) {
    std::string bytes;
    for (float v : values)
      bytes.append(reinterpret_cast<const char *>(&v), sizeof(v));
    return bytes;
  }

  std::string dir;
  std::vector<std::string> files;
};

TEST_F(SafeTensorsTest, ReadsTensorsInPlace) {
  std::string path = write(
      "model.safetensors",
      R"({"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, "b": {"dtype": "BF16", "shape": [2], "data_offsets": [24, 28]}})",
      floats({1, 2, 3, 4, 5, 6}) + std::string("\x80\x3f\x00\x40", 4));
  std::string error;
  auto st = SafeTensors::open(path, error);
  ASSERT_TRUE(st) << error;
  EXPECT_EQ(st->tensors().size(), 2u);
  const WeightView *a = st->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, "F32");
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  float sixth;
  std::memcpy(&sixth, a->data + 20, 4);
  EXPECT_EQ(sixth, 6.0f);
  EXPECT_EQ(st->find("b")->bytes, 4u);
  EXPECT_EQ(st->find("c"), nullptr);
}

TEST_F(SafeTensorsTest, ChecksAgainstTheModel) {
  std::string path = write(
      "model.safetensors",
      R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
      floats({1, 2}));
  std::string error;
  auto st = SafeTensors::open(path, error);
  ASSERT_TRUE(st) << error;
  EXPECT_EQ(st->check({{"w", "F32", {2}, {}}}), "");
  EXPECT_EQ(st->check({{"v", "F32", {2}, {}}}),
            "missing weight 'v' (F32 [2])\n");
  EXPECT_EQ(st->check({{"w", "BF16", {2}, {}}}),
            "weight 'w' is F32, the model expects BF16\n");
  EXPECT_EQ(st->check({{"w", "F32", {1, 2}, {}}}),
            "weight 'w' has shape [2], the model expects [1, 2]\n");
}

TEST_F(SafeTensorsTest, ChecksAgainstAManifest) {
  // As kvc-compile --emit=manifest writes it.
  Manifest manifest;
  std::string error;
  ASSERT_TRUE(parseManifest(R"({
    "target": "cuda", "vocab_size": 4,
    "entry_points": ["model_prefill", "model_decode"],
    "weights": [
      {"dtype": "F32", "name": "model.embed_tokens.weight", "shape": [4, 2]},
      {"dtype": "F32", "name": "model.norm.weight", "shape": [2]}
    ]})", manifest, error)) << error;
  EXPECT_EQ(manifest.strings["target"], "cuda");
  EXPECT_EQ(manifest.integers["vocab_size"], 4);
  const std::vector<WeightSpec> &expected = manifest.weights;
  ASSERT_EQ(expected.size(), 2u);
  EXPECT_EQ(expected[0].shape, (std::vector<int64_t>{4, 2}));
  std::string path = write(
      "model.safetensors",
      R"({"model.embed_tokens.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]}, "model.norm.weight": {"dtype": "BF16", "shape": [2], "data_offsets": [32, 36]}})",
      floats({1, 2, 3, 4, 5, 6, 7, 8, 9}));
  auto st = SafeTensors::open(path, error);
  ASSERT_TRUE(st) << error;
  EXPECT_EQ(st->check(expected),
            "weight 'model.norm.weight' is BF16, the model expects F32\n");
  Manifest none;
  EXPECT_FALSE(parseManifest(R"({"weights": [{"name": "x"}]})", none, error));
  EXPECT_EQ(error, "manifest weight 0 lacks a name, a dtype or a shape");
  EXPECT_FALSE(parseManifest("[1, 2", none, error));
}

TEST_F(SafeTensorsTest, ChecksThePartsOfPackedWeights) {
  Manifest manifest;
  std::string error;
  ASSERT_TRUE(parseManifest(R"({"weights": [
    {"dtype": "F32", "name": "qkv", "shape": [3, 2], "parts": [
      {"name": "q", "shape": [2, 2]}, {"name": "k", "shape": [1, 2]}]}]})",
                            manifest, error))
      << error;
  ASSERT_EQ(manifest.weights[0].parts.size(), 2u);
  EXPECT_EQ(manifest.weights[0].parts[1].dtype, "F32");
  std::string path = write(
      "packed.safetensors",
      R"({"q": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, "k": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}})",
      floats({1, 2, 3, 4, 5, 6}));
  auto st = SafeTensors::open(path, error);
  ASSERT_TRUE(st) << error;
  EXPECT_EQ(st->check(manifest.weights),
            "weight 'k' has shape [2], the model expects [1, 2]\n");
  Manifest bad;
  EXPECT_FALSE(parseManifest(R"({"weights": [
    {"dtype": "F32", "name": "qkv", "shape": [3, 2], "parts": [
      {"name": "q", "shape": [2, 2]}]}]})",
                             bad, error));
  EXPECT_EQ(error, "manifest weight 'qkv': its parts have 2 rows");
}

TEST_F(SafeTensorsTest, ReadsShardedDirectories) {
  write("model-00001-of-00002.safetensors",
        R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
        floats({1}));
  write("model-00002-of-00002.safetensors",
        R"({"b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
        floats({2}));
  std::string error;
  auto st = SafeTensors::open(dir, error);
  ASSERT_TRUE(st) << error;
  EXPECT_NE(st->find("a"), nullptr);
  EXPECT_NE(st->find("b"), nullptr);
}

/// Opening `path` fails with an error containing `expected`.
void expectError(const std::string &path, const std::string &expected) {
  std::string error;
  EXPECT_EQ(SafeTensors::open(path, error), nullptr);
  EXPECT_NE(error.find(expected), std::string::npos) << error;
}

TEST_F(SafeTensorsTest, RejectsBadFiles) {
  expectError(dir + "/absent.safetensors", "absent.safetensors");
  std::string tiny = dir + "/tiny.safetensors";
  std::ofstream(tiny) << "abc";
  files.push_back(tiny);
  expectError(tiny, "truncated: 3 bytes");
  expectError(write("long.safetensors", "{}", "", 1000),
              "truncated: the header claims 1000 bytes");
  expectError(write("json.safetensors", R"({"a": {"dtype": )", ""),
              "invalid JSON header");
  expectError(write("outside.safetensors",
                    R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                    floats({1, 2})),
              "tensor 'a' lies outside the file");
  expectError(write("size.safetensors",
                    R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})",
                    floats({1, 2})),
              "tensor 'a' has 8 bytes for F32 [3]");
  expectError(write("dtype.safetensors",
                    R"({"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}})",
                    "x"),
              "unknown dtype Q4");
  expectError(write("fields.safetensors", R"({"a": {"shape": [1]}})", ""),
              "lacks a dtype, a shape or two data_offsets");
}

TEST_F(SafeTensorsTest, RejectsANameInTwoShards) {
  write("a.safetensors",
        R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
        floats({1}));
  write("b.safetensors",
        R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
        floats({2}));
  expectError(dir, "tensor 'w' appears in two files");
}

TEST_F(SafeTensorsTest, RejectsAnEmptyDirectory) {
  expectError(dir, "no .safetensors files");
}

} // namespace
