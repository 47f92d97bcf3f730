//===- Warpgroup.h - Hopper warpgroup MMA in kvc's kernels ------*- C++ -*-===//
//
// Internal to the kernel generators: wgmma (sm_90a) products of a warpgroup
// (the block's 4 warps) on tiles in shared memory, f16 or bf16 operands and
// f32 accumulation, and the tensor-memory-accelerator loads and mbarriers
// that fill the tiles.
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
// instruction is written as inline PTX, like the loads (Bulk.h).
//
//===----------------------------------------------------------------------===//
#ifndef KVC_LIB_CONVERSION_KVCTOGPU_WARPGROUP_H
#define KVC_LIB_CONVERSION_KVCTOGPU_WARPGROUP_H

#include "Bulk.h"

#include <string>
#include <vector>

namespace mlir::kvc::kernels::detail {

/// The wgmma products, tile loads and barriers of one warpgroup on tiles of
/// `rows` x `d` elements.
class Warpgroup {
public:
  Warpgroup(Writer &w, int64_t rows, int64_t d)
      : w(w), rows(rows), d(d), t(getName(w.type).str()),
        smemType("memref<" + std::to_string(rows * d) + "x" + t +
                 ", #gpu.address_space<workgroup>>") {}

  /// Loads rows [row, row + rows) (i32) of head `head` (i32) of the 3-D
  /// tensor of `map` (the generic address of its CUtensorMap, i64: [heads,
  /// rows, d] elements, boxes of 64 x 64 x 1, 128-byte swizzle) into the
  /// tile at shared address `dst`, one tensor-memory-accelerator copy per
  /// 64-column slice, completing on barrier `bar` (this thread arrives,
  /// expecting the tile's bytes). Rows past the head's last are zeros.
  void loadTile(StringRef map, StringRef head, StringRef row, StringRef dst,
                StringRef bar) {
    expectBytes(w, bar, w.i32(rows * d * 2));
    for (int64_t slice = 0; slice < d / 64; ++slice) {
      std::string to =
          slice ? w.let("arith.addi " + dst + ", " +
                        w.i32(slice * rows * 128) + " : i32")
                : dst.str();
      w.line("llvm.inline_asm has_side_effects asm_dialect = att "
             "\"cp.async.bulk.tensor.3d.shared::cluster.global.tile."
             "mbarrier::complete_tx::bytes [$0], [$1, {$2, $3, $4}], [$5];\", "
             "\"r,l,r,r,r,r,~{memory}\" " + to + ", " + map.str() + ", " +
             w.i32(slice * 64) + ", " + row.str() + ", " + head.str() + ", " +
             bar.str() + " : (i32, i64, i32, i32, i32, i32) -> ()");
    }
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
  /// waits until they are done.
  void commitAndWait() {
    w.line("nvvm.wgmma.commit.group.sync.aligned");
    w.line("nvvm.wgmma.wait.group.sync.aligned 0");
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
