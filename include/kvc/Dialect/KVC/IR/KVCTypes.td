//===- KVCTypes.td - kvc dialect types ---------------------*- tablegen -*-===//
#ifndef KVC_DIALECT_KVC_IR_KVCTYPES_TD
#define KVC_DIALECT_KVC_IR_KVCTYPES_TD

include "kvc/Dialect/KVC/IR/KVCBase.td"
include "mlir/IR/AttrTypeBase.td"

def KVC_CacheType : TypeDef<KVC_Dialect, "Cache"> {
  let mnemonic = "cache";
  let summary = "key/value cache of one attention layer";
  let description = [{
    A handle to the keys and values of `batch` sequences, each of at most
    `capacity` positions, for `kv_heads` heads of `head_dim` elements, plus the
    number of valid positions of each sequence (its length, 0 after
    allocation). Written like a shaped type, dims in the order of the
    `[batch, kv_heads, capacity, head_dim]` tensors it stores:

    ```mlir
    !kvc.cache<4x8x4096x128xbf16>   // static batch and capacity
    !kvc.cache<?x8x?x64xf16>        // both chosen at allocation
    ```

    `batch` and `capacity` may be dynamic (`?`); head counts and head size
    are static. Cache policies (quantized storage, paged layout) are meant to
    extend this type with an encoding, as tensor types carry one; none exists
    yet, so the stored element type is the element type.
  }];
  let parameters = (ins
    "int64_t":$batch,
    "int64_t":$kvHeads,
    "int64_t":$capacity,
    "int64_t":$headDim,
    "::mlir::Type":$elementType
  );
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The `[batch, kv_heads, capacity, head_dim]` shape of the stored keys
    /// (and values).
    ::llvm::SmallVector<int64_t, 4> getShape() const {
      return {getBatch(), getKvHeads(), getCapacity(), getHeadDim()};
    }
    /// The `tensor<batch x i32>` type of per-sequence lengths and positions.
    ::mlir::RankedTensorType getLengthsType() const;
  }];
}

#endif // KVC_DIALECT_KVC_IR_KVCTYPES_TD
