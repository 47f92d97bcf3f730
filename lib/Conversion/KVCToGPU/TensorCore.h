//===- TensorCore.h - mma.sync pieces of kvc's attention kernels -*- C++ -*-===//
//
// Internal to the kernel generators: m16n8k16 tensor-core products (f16 or
// bf16 operands, f32 accumulation), ldmatrix from padded shared tiles and
// cp.async staging of row tiles for the tensor-core decode kernel, and the
// online-softmax step and P operands that the prefill kernel's wgmma
// products share with it (Warpgroup.h). The fragments follow the PTX m16n8k16 layouts: thread
// (g = lane/4, t = lane%4) holds rows g and g+8, columns 2t and 2t+1 of each
// 8-column accumulator tile, which is also how P feeds the second product.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_CONVERSION_KVCTOGPU_TENSORCORE_H
#define KVC_LIB_CONVERSION_KVCTOGPU_TENSORCORE_H

#include "KernelWriter.h"

#include <array>
#include <vector>

namespace mlir::kvc::kernels::detail {

/// Tiles of `rows` x `d` elements in shared memory, rows padded by 8
/// elements (no bank conflicts for ldmatrix).
class TensorCore {
public:
  TensorCore(Writer &w, int64_t rows, int64_t d)
      : w(w), rows(rows), d(d), bf16(w.type == ElementType::BF16),
        t(getName(w.type).str()), pair("vector<2x" + t + ">"),
        frag4("vector<4x2x" + t + ">"), operand(bf16 ? "i32" : pair),
        smemType("memref<" + std::to_string(rows) + "x" +
                 std::to_string(d + 8) + "x" + t +
                 ", #gpu.address_space<workgroup>>") {}

  /// A lane's part of an ldmatrix x4 address: lane l names row l%8 (`row`)
  /// of 8x8 matrix l/8, which starts at row `low` = (l/8)%2 * 8 and column
  /// `high` = l/16 * 8 (or the other way round, as the operand needs).
  struct MatrixLane {
    std::string row, low, high;
  };
  MatrixLane matrixLane(StringRef lane) {
    std::string mat = w.div(lane, w.index(8)), row = w.rem(lane, w.index(8));
    std::string low = w.mul(w.rem(mat, w.index(2)), w.index(8));
    return {row, low, w.mul(w.div(mat, w.index(2)), w.index(8))};
  }

  /// Four operand registers of one ldmatrix x4 at (row, col) of `smem`.
  std::array<std::string, 4> ldmatrix(StringRef smem, StringRef row,
                                      StringRef col, bool transpose) {
    std::string frag = w.let("nvgpu.ldmatrix " + smem + "[" + row + ", " +
                             col + "] {numTiles = 4 : i32, transpose = " +
                             (transpose ? "true" : "false") + "} : " +
                             smemType + " -> " + frag4);
    std::array<std::string, 4> regs;
    for (int64_t r = 0; r < 4; ++r) {
      regs[r] = w.let("vector.extract " + frag + "[" + std::to_string(r) +
                      "] : " + pair + " from " + frag4);
      if (bf16)
        regs[r] = w.let("llvm.bitcast " + regs[r] + " : " + pair + " to i32");
    }
    return regs;
  }

  /// acc += a * b on one 16x8 tile; accumulators are 4 f32 scalars.
  void mma(const std::array<std::string, 4> &a, StringRef b0, StringRef b1,
           std::array<std::string, 4> &acc) {
    std::string types = bf16 ? "multiplicandAPtxType = #nvvm.mma_type<bf16>, "
                               "multiplicandBPtxType = #nvvm.mma_type<bf16>, "
                             : "";
    std::string r = w.let(
        "nvvm.mma.sync A[" + a[0] + ", " + a[1] + ", " + a[2] + ", " + a[3] +
        "] B[" + b0 + ", " + b1 + "] C[" + acc[0] + ", " + acc[1] + ", " +
        acc[2] + ", " + acc[3] + "] {layoutA = #nvvm.mma_layout<row>, "
        "layoutB = #nvvm.mma_layout<col>, " + types +
        "shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (" + operand + ", " +
        operand + ", f32) -> !llvm.struct<(f32, f32, f32, f32)>");
    for (int64_t e = 0; e < 4; ++e)
      acc[e] = w.let("llvm.extractvalue " + r + "[" + std::to_string(e) +
                     "] : !llvm.struct<(f32, f32, f32, f32)>");
  }

  /// Two probabilities (f32) of a row as one A operand register.
  std::string operandOf(StringRef p0, StringRef p1) {
    std::string x0 = w.let("arith.truncf " + p0 + " : f32 to " + t);
    std::string x1 = w.let("arith.truncf " + p1 + " : f32 to " + t);
    std::string r =
        w.let("vector.from_elements " + x0 + ", " + x1 + " : " + pair);
    return bf16 ? w.let("llvm.bitcast " + r + " : " + pair + " to i32") : r;
  }

  /// acc[j] += P V for the 16 keys at `keyRow` of `smem` (V tiles read
  /// transposed: matrices (keys 0-7, d 0-7), (keys 8-15, d 0-7), (keys 0-7,
  /// d 8-15), (keys 8-15, d 8-15) are the B operands of two 8-wide d
  /// tiles).
  void addPV(StringRef smem, StringRef keyRow,
             const std::array<std::string, 4> &p,
             std::vector<std::array<std::string, 4>> &acc,
             const MatrixLane &at) {
    for (int64_t dp = 0; dp < d / 16; ++dp) {
      auto vf = ldmatrix(smem, w.add(w.add(keyRow, at.low), at.row),
                         w.add(w.index(dp * 16), at.high), true);
      mma(p, vf[0], vf[1], acc[2 * dp]);
      mma(p, vf[2], vf[3], acc[2 * dp + 1]);
    }
  }

  /// `scf.yield` of the output tiles `acc`, then the running maxima and
  /// sums of the two row halves, all f32 (`types`).
  void yieldTiles(const std::vector<std::array<std::string, 4>> &acc,
                  StringRef mA, StringRef mB, StringRef lA, StringRef lB,
                  StringRef types) {
    std::string yields;
    for (const auto &tile : acc)
      for (const std::string &v : tile)
        yields += v + ", ";
    w.line("scf.yield " + yields + mA + ", " + mB + ", " + lA + ", " + lB +
           " : " + types);
  }

  /// The online-softmax step of a warp's two row halves (rows g and g+8):
  /// `maxA`/`maxB` (this thread's maxima of the new scores) reduced over
  /// the 4 threads of a row, the new running maxima (from `ma`/`mb`), the
  /// factors the old output rescales by, and the old sums `la`/`lb`
  /// rescaled.
  struct SoftmaxStep {
    std::string mA, mB, alphaA, alphaB, lA, lB;
  };
  SoftmaxStep softmaxStep(std::string maxA, std::string maxB, StringRef ma,
                          StringRef mb, StringRef la, StringRef lb) {
    for (int64_t off : {1, 2}) {
      maxA = w.fbin("maximumf", maxA, w.shuffle(maxA, off, false));
      maxB = w.fbin("maximumf", maxB, w.shuffle(maxB, off, false));
    }
    SoftmaxStep step;
    step.mA = w.fbin("maximumf", ma, maxA);
    step.mB = w.fbin("maximumf", mb, maxB);
    step.alphaA = w.exp2(w.fbin("subf", ma, step.mA));
    step.alphaB = w.exp2(w.fbin("subf", mb, step.mB));
    step.lA = w.fbin("mulf", la, step.alphaA);
    step.lB = w.fbin("mulf", lb, step.alphaB);
    return step;
  }

  /// Copies rows [first, first + rows) of a [*, d] matrix at `base` of
  /// `src` into `dst`, 16 bytes a thread at a time (thread `tid` of 128),
  /// with cp.async when `async`; rows past `last` repeat row `last`.
  /// `elements`, if given, is how many of each copy's 8 elements are read
  /// (cp.async zero-fills the rest; 0 reads nothing). Returns the cp.async
  /// group.
  std::string stage(StringRef src, StringRef base, StringRef first,
                    StringRef last, StringRef dst, StringRef tid, bool async,
                    StringRef elements = "") {
    std::string m = memrefOf(w.type), tokens;
    for (int64_t chunk = 0; chunk < rows * d / kVectorWidth / kBlockSize;
         ++chunk) {
      std::string idx = w.add(w.index(chunk * kBlockSize), tid);
      std::string row = w.div(idx, w.index(d / kVectorWidth));
      std::string col = w.mul(w.rem(idx, w.index(d / kVectorWidth)),
                              w.index(kVectorWidth));
      std::string srcRow = w.min(w.add(first, row), last);
      std::string at = w.add(base, w.add(w.mul(srcRow, w.index(d)), col));
      if (async) {
        std::string token = w.let(
            "nvgpu.device_async_copy " + src + "[" + at + "], " + dst + "[" +
            row + ", " + col + "], 8" +
            (elements.empty() ? "" : ", " + elements.str()) + " : " + m +
            " to " + smemType);
        tokens += (tokens.empty() ? "" : ", ") + token;
      } else {
        w.line("vector.store " + w.loadRaw(src, at) + ", " + dst + "[" + row +
               ", " + col + "] : " + smemType + ", vector<8x" + t + ">");
      }
    }
    return async ? w.let("nvgpu.device_async_create_group " + tokens)
                 : std::string();
  }

  Writer &w;
  const int64_t rows, d;
  const bool bf16;
  const std::string t, pair, frag4, operand, smemType;
};

} // namespace mlir::kvc::kernels::detail

#endif // KVC_LIB_CONVERSION_KVCTOGPU_TENSORCORE_H
