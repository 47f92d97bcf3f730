//===- KVCBase.td - kvc dialect definition -----------------*- tablegen -*-===//
#ifndef KVC_DIALECT_KVC_IR_KVCBASE_TD
#define KVC_DIALECT_KVC_IR_KVCBASE_TD

include "mlir/IR/OpBase.td"

def KVC_Dialect : Dialect {
  let name = "kvc";
  let summary = "attention with explicit key/value caches";
  let description = [{
    The kvc dialect states transformer attention in two forms. The
    full-sequence form (`kvc.attention`) is how a model is trained: every
    position attends over the whole sequence. The cached form keeps the keys
    and values of earlier positions in a `!kvc.cache` and attends with the
    queries of new positions only (`kvc.cache.append`,
    `kvc.decode_attention`). Caches are handles to memory: the ops that touch
    them declare reads and writes on the `kvc::CacheResource` resource.
  }];
  let cppNamespace = "::mlir::kvc";
  let useDefaultTypePrinterParser = 1;
  let extraClassDeclaration = [{
    void registerTypes();
  }];
}

class KVC_Op<string mnemonic, list<Trait> traits = []>
    : Op<KVC_Dialect, mnemonic, traits>;

#endif // KVC_DIALECT_KVC_IR_KVCBASE_TD
