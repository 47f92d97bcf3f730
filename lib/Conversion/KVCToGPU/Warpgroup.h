//===- Warpgroup.h - Hopper warpgroup MMA in kvc's kernels ------*- C++ -*-===//
//
// Internal to the kernel generators: wgmma (sm_90a) products of a warpgroup
// (the block's 4 warps) on tiles in shared memory, f16 or bf16 operands and
// f32 accumulation.
//
// A tile of `rows` x `d` elements (d a multiple of 64) lies in shared
// memory in the 128-byte swizzle of the PTX matrix descriptors: 64-column
// slices one after another, each `rows` lines of 128 bytes, and the eight
// 16-byte chunks of line r permuted by r % 8 (chunk c at c ^ (r % 8)), so
// that 8 consecutive rows spread over all banks. The tile must start 1024
// bytes aligned. Read with its rows as the product's M or N (K-major: q and
// k in S = q k^T) a 16-wide k step is 32 bytes on within a slice; read with
// its rows as k (MN-major: v in O = P v) it is 16 lines on, and the next 64
// columns of N are a slice on.
//
// The accumulators of m64nNk16 are laid out as those of mma.sync m16n8k16
// per warp (warp w holds rows 16w..16w+15; thread (g = lane/4, t = lane%4)
// rows g and g+8, columns 2t and 2t+1 of each 8-column tile), and so is an
// A operand taken from registers: P feeds O = P v without leaving them.
//
// MLIR 22's nvvm.wgmma.mma_async takes A from shared memory only, so the
// instruction is written as inline PTX.
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_CONVERSION_KVCTOGPU_WARPGROUP_H
#define KVC_LIB_CONVERSION_KVCTOGPU_WARPGROUP_H

#include "KernelWriter.h"

#include <string>
#include <vector>

namespace mlir::kvc::kernels::detail {

class Warpgroup {
public:
  Warpgroup(Writer &w, int64_t rows, int64_t d)
      : w(w), rows(rows), d(d), t(getName(w.type).str()),
        smemType("memref<" + std::to_string(rows * d) + "x" + t +
                 ", #gpu.address_space<workgroup>>") {}

  /// Copies rows [first, first + rows) of a [*, d] matrix at `base` of
  /// `src` into the swizzled tile `dst` with cp.async, 16 bytes a thread at a
  /// time (thread `tid` of 128; 8 consecutive threads fill one line); rows
  /// past `last` repeat row `last`. Returns the cp.async group.
  std::string stage(StringRef src, StringRef base, StringRef first,
                    StringRef last, StringRef dst, StringRef tid) {
    std::string tokens;
    for (int64_t c = 0; c < rows * d / kVectorWidth / kBlockSize; ++c) {
      std::string p = w.add(w.index(c * kBlockSize), tid);
      std::string line = w.div(p, w.index(8)), chunk = w.rem(p, w.index(8));
      std::string slice = w.div(line, w.index(rows));
      std::string row = w.rem(line, w.index(rows));
      std::string col = w.add(w.mul(slice, w.index(64)),
                              w.mul(chunk, w.index(kVectorWidth)));
      std::string srcRow = w.min(w.add(first, row), last);
      std::string at = w.add(base, w.add(w.mul(srcRow, w.index(d)), col));
      std::string swizzled = w.let("arith.xori " + chunk + ", " +
                                   w.rem(row, w.index(8)) + " : index");
      std::string to = w.mul(w.add(w.mul(line, w.index(8)), swizzled),
                             w.index(kVectorWidth));
      std::string token = w.let("nvgpu.device_async_copy " + src + "[" + at +
                                "], " + dst + "[" + to + "], 8 : " +
                                memrefOf(w.type) + " to " + smemType);
      tokens += (tokens.empty() ? "" : ", ") + token;
    }
    return w.let("nvgpu.device_async_create_group " + tokens);
  }

  /// Makes this thread's finished cp.async writes visible to wgmma (the
  /// async proxy); a barrier must follow before any warp reads them.
  void publish() {
    w.line("nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, "
           "space = #nvvm.shared_space<cta>}");
  }

  /// The descriptor (i64) of tile `buffer` read K-major (its rows as M or N)
  /// or MN-major (its rows as k).
  std::string descriptor(StringRef buffer, bool kMajor) {
    std::string at = w.let("memref.extract_aligned_pointer_as_index " + buffer +
                           " : " + smemType + " -> index");
    std::string address = w.let("arith.index_cast " + at + " : index to i64");
    std::string start = w.let(
        "arith.shrui " +
        w.let("arith.andi " + address + ", " + w.i64(0x3FFFF) + " : i64") +
        ", " + w.i64(4) + " : i64");
    // Leading byte offset: between 64-column slices (unused K-major); stride
    // byte offset: between groups of 8 lines; layout 1: 128-byte swizzle.
    int64_t leading = kMajor ? 16 : rows * 128, stride = 1024;
    int64_t fields = ((leading >> 4) << 16) | ((stride >> 4) << 32) |
                     (int64_t(1) << 62);
    return w.let("arith.ori " + start + ", " + w.i64(fields) + " : i64");
  }

  /// `desc` moved to the 16-wide slice `step` of the product's k.
  std::string slice(StringRef desc, int64_t step, bool kMajor) {
    int64_t bytes = kMajor ? step / 4 * rows * 128 + step % 4 * 32 : step * 2048;
    return step ? w.let("arith.addi " + desc.str() + ", " + w.i64(bytes >> 4) +
                        " : i64")
                : desc.str();
  }

  /// acc (n/2 f32 per thread) = a * b (+ acc if `accumulate`) for m64nNk16,
  /// a a descriptor or 4 registers (i32 or vector<2xT>), b a descriptor
  /// (read transposed if `transposeB`). Issues the instruction; its results
  /// may be read only after wait().
  std::vector<std::string> mma(int64_t n, const std::vector<std::string> &acc,
                               const std::vector<std::string> &a,
                               StringRef b, bool transposeB, bool accumulate) {
    const int64_t regs = n / 2;
    std::string list, constraints, operands, types;
    for (int64_t i = 0; i < regs; ++i) {
      list += (i ? ", $" : "$") + std::to_string(i);
      constraints += "=f,";
    }
    for (int64_t i = 0; i < regs; ++i) {
      constraints += std::to_string(i) + ",";
      operands += acc[i] + ", ";
      types += "f32, ";
    }
    std::string aText;
    int64_t next = 2 * regs;
    if (a.size() == 1) {
      aText = "$" + std::to_string(next++);
      constraints += "l,";
      operands += a[0] + ", ";
      types += "i64, ";
    } else {
      for (size_t i = 0; i < a.size(); ++i) {
        aText += (i ? ", $" : "{$") + std::to_string(next++);
        constraints += "r,";
        operands += asI32(a[i]) + ", ";
        types += "i32, ";
      }
      aText += "}";
    }
    std::string bText = "$" + std::to_string(next++);
    constraints += "l,~{memory}";
    operands += b.str();
    types += "i64";
    std::string flags = a.size() == 1 ? ", 1, 1, 0, " : ", 1, 1, ";
    std::string ptx =
        "{ .reg .pred p; setp.ne.b32 p, " + std::to_string(accumulate) +
        ", 0; wgmma.mma_async.sync.aligned.m64n" + std::to_string(n) +
        "k16.f32." + t + "." + t + " {" + list + "}, " + aText + ", " + bText +
        ", p" + flags + (transposeB ? "1" : "0") + "; }";
    std::string structType = "!llvm.struct<(";
    for (int64_t i = 0; i < regs; ++i)
      structType += i ? ", f32" : "f32";
    structType += ")>";
    std::string r = w.let("llvm.inline_asm has_side_effects asm_dialect = att \"" +
                          ptx + "\", \"" + constraints + "\" " + operands +
                          " : (" + types + ") -> " + structType);
    std::vector<std::string> out(regs);
    for (int64_t i = 0; i < regs; ++i)
      out[i] = w.let("llvm.extractvalue " + r + "[" + std::to_string(i) +
                     "] : " + structType);
    return out;
  }

  /// Orders this warpgroup's register writes before the products that
  /// follow (wgmma.fence).
  void fence() { w.line("nvvm.wgmma.fence.aligned"); }
  /// Closes the products issued since the last commit into a group and
  /// waits until at most `pending` groups are in flight.
  void commitAndWait(int64_t pending) {
    w.line("nvvm.wgmma.commit.group.sync.aligned");
    w.line("nvvm.wgmma.wait.group.sync.aligned " + std::to_string(pending));
  }

  Writer &w;
  const int64_t rows, d;
  const std::string t, smemType;

private:
  std::string asI32(StringRef x) {
    if (w.type == ElementType::BF16)
      return x.str(); // TensorCore::operandOf already packs bf16 pairs as i32
    return w.let("llvm.bitcast " + x + " : vector<2x" + t + "> to i32");
  }
};

} // namespace mlir::kvc::kernels::detail

#endif // KVC_LIB_CONVERSION_KVCTOGPU_WARPGROUP_H
