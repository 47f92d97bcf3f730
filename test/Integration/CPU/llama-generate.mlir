// Tests that greedy generation through @llama_prefill and @llama_decode gives
// the tokens and logits of recomputing the whole sequence with @llama at every
// step: a 2-layer Llama-style model (RMSNorm, rotary, GQA 4:1, SwiGLU, tied
// embedding) with fixed pseudo-random weights, a ragged batch of two prompts
// (3 and 5 tokens), 64 new tokens each.
//
// RUN: cat %S/../../../examples/llama-tiny.mlir %S/../../../examples/llama-tiny-driver.mlir %s \
// RUN:   | kvc-opt --inline --kvc-incrementalize -verify-each --kvc-cpu-pipeline \
// RUN:   | mlir-runner -e main -entry-point-result=void \
// RUN:       -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils \
// RUN:   | FileCheck %s

// CHECK: token mismatches: 0
// CHECK-NEXT: logits within 1e-4: 1
// CHECK-NEXT: varied output: 1

func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c16 = arith.constant 16 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %steps = arith.constant 64 : index
  %w:20 = func.call @llama_weights() : () -> (tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>)
  %prompts = arith.constant dense<[[5, 17, 42, 0, 0], [9, 3, 101, 77, 64]]> : tensor<2x5xi32>
  %lengths = arith.constant dense<[3, 5]> : tensor<2xi32>
  %tokens0 = tensor.empty() : tensor<2x64xi32>
  %logits0 = tensor.empty() : tensor<2x64x128xf32>

  // Reference: each sequence alone, the whole prefix recomputed every step.
  %ref:2 = scf.for %b = %c0 to %c2 step %c1 iter_args(%toks = %tokens0, %logs = %logits0)
      -> (tensor<2x64xi32>, tensor<2x64x128xf32>) {
    %len32 = tensor.extract %lengths[%b] : tensor<2xi32>
    %len = arith.index_cast %len32 : i32 to index
    %buf0 = tensor.empty() : tensor<1x69xi32>
    %prompt = tensor.extract_slice %prompts[%b, 0] [1, 5] [1, 1] : tensor<2x5xi32> to tensor<1x5xi32>
    %buf1 = tensor.insert_slice %prompt into %buf0[0, 0] [1, 5] [1, 1] : tensor<1x5xi32> into tensor<1x69xi32>
    %gen:3 = scf.for %i = %c0 to %steps step %c1 iter_args(%buf = %buf1, %t = %toks, %l = %logs)
        -> (tensor<1x69xi32>, tensor<2x64xi32>, tensor<2x64x128xf32>) {
      %n = arith.addi %len, %i : index
      %tok = tensor.extract_slice %buf[0, 0] [1, %n] [1, 1] : tensor<1x69xi32> to tensor<1x?xi32>
      %tokd = tensor.cast %tok : tensor<1x?xi32> to tensor<?x?xi32>
      %pos = tensor.generate %c1, %n {
      ^bb0(%pb: index, %ps: index):
        %p = arith.index_cast %ps : index to i32
        tensor.yield %p : i32
      } : tensor<?x?xi32>
      %all = func.call @llama(%tokd, %pos, %w#0, %w#1, %w#2, %w#3, %w#4, %w#5, %w#6, %w#7, %w#8, %w#9, %w#10, %w#11, %w#12, %w#13, %w#14, %w#15, %w#16, %w#17, %w#18, %w#19)
          : (tensor<?x?xi32>, tensor<?x?xi32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>) -> tensor<?x?x128xf32>
      %last = arith.subi %n, %c1 : index
      %row = tensor.extract_slice %all[0, %last, 0] [1, 1, 128] [1, 1, 1] : tensor<?x?x128xf32> to tensor<128xf32>
      %next = func.call @argmax(%row) : (tensor<128xf32>) -> i32
      %buf2 = tensor.insert %next into %buf[%c0, %n] : tensor<1x69xi32>
      %t2 = tensor.insert %next into %t[%b, %i] : tensor<2x64xi32>
      %l2 = tensor.insert_slice %row into %l[%b, %i, 0] [1, 1, 128] [1, 1, 1] : tensor<128xf32> into tensor<2x64x128xf32>
      scf.yield %buf2, %t2, %l2 : tensor<1x69xi32>, tensor<2x64xi32>, tensor<2x64x128xf32>
    }
    scf.yield %gen#1, %gen#2 : tensor<2x64xi32>, tensor<2x64x128xf32>
  }

  // kvc: prefill the padded batch once, then decode one row per step.
  %c69 = arith.constant 69 : index
  %promptsd = tensor.cast %prompts : tensor<2x5xi32> to tensor<?x?xi32>
  %lengthsd = tensor.cast %lengths : tensor<2xi32> to tensor<?xi32>
  %pre:3 = func.call @llama_prefill(%promptsd, %w#0, %w#1, %w#2, %w#3, %w#4, %w#5, %w#6, %w#7, %w#8, %w#9, %w#10, %w#11, %w#12, %w#13, %w#14, %w#15, %w#16, %w#17, %w#18, %w#19, %lengthsd, %c69)
      : (tensor<?x?xi32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<?xi32>, index)
      -> (tensor<?x1x128xf32>, !kvc.cache<?x1x?x16xf32>, !kvc.cache<?x1x?x16xf32>)
  %inc:3 = scf.for %i = %c0 to %steps step %c1 iter_args(%prev = %pre#0, %t = %tokens0, %l = %logits0)
      -> (tensor<?x1x128xf32>, tensor<2x64xi32>, tensor<2x64x128xf32>) {
    %picked:3 = scf.for %b = %c0 to %c2 step %c1 iter_args(%nt = %tokens0, %t1 = %t, %l1 = %l)
        -> (tensor<2x64xi32>, tensor<2x64xi32>, tensor<2x64x128xf32>) {
      %row = tensor.extract_slice %prev[%b, 0, 0] [1, 1, 128] [1, 1, 1] : tensor<?x1x128xf32> to tensor<128xf32>
      %next = func.call @argmax(%row) : (tensor<128xf32>) -> i32
      %nt2 = tensor.insert %next into %nt[%b, %c0] : tensor<2x64xi32>
      %t2 = tensor.insert %next into %t1[%b, %i] : tensor<2x64xi32>
      %l2 = tensor.insert_slice %row into %l1[%b, %i, 0] [1, 1, 128] [1, 1, 1] : tensor<128xf32> into tensor<2x64x128xf32>
      scf.yield %nt2, %t2, %l2 : tensor<2x64xi32>, tensor<2x64xi32>, tensor<2x64x128xf32>
    }
    %newtok = tensor.extract_slice %picked#0[0, 0] [2, 1] [1, 1] : tensor<2x64xi32> to tensor<2x1xi32>
    %newtokd = tensor.cast %newtok : tensor<2x1xi32> to tensor<?x?xi32>
    %i32 = arith.index_cast %i : index to i32
    %ei = tensor.empty() : tensor<2xi32>
    %steps2 = linalg.fill ins(%i32 : i32) outs(%ei : tensor<2xi32>) -> tensor<2xi32>
    %positions = arith.addi %lengths, %steps2 : tensor<2xi32>
    %positionsd = tensor.cast %positions : tensor<2xi32> to tensor<?xi32>
    %out = func.call @llama_decode(%newtokd, %w#0, %w#1, %w#2, %w#3, %w#4, %w#5, %w#6, %w#7, %w#8, %w#9, %w#10, %w#11, %w#12, %w#13, %w#14, %w#15, %w#16, %w#17, %w#18, %w#19, %positionsd, %pre#1, %pre#2)
        : (tensor<?x?xi32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<?xi32>, !kvc.cache<?x1x?x16xf32>, !kvc.cache<?x1x?x16xf32>)
        -> tensor<?x?x128xf32>
    %outc = tensor.cast %out : tensor<?x?x128xf32> to tensor<?x1x128xf32>
    scf.yield %outc, %picked#1, %picked#2 : tensor<?x1x128xf32>, tensor<2x64xi32>, tensor<2x64x128xf32>
  }

  // Compare.
  %zero = arith.constant 0 : i32
  %one = arith.constant 1 : i32
  %fzero = arith.constant 0.0 : f32
  %cmp:3 = scf.for %b = %c0 to %c2 step %c1 iter_args(%mis = %zero, %md = %fzero, %distinct = %zero) -> (i32, f32, i32) {
    %inner:3 = scf.for %i = %c0 to %steps step %c1 iter_args(%m = %mis, %d = %md, %dc = %distinct) -> (i32, f32, i32) {
      %a = tensor.extract %ref#0[%b, %i] : tensor<2x64xi32>
      %k = tensor.extract %inc#1[%b, %i] : tensor<2x64xi32>
      %ne = arith.cmpi ne, %a, %k : i32
      %inc1 = arith.select %ne, %one, %zero : i32
      %m2 = arith.addi %m, %inc1 : i32
      // A token differing from the one before it counts as a change.
      %ip = arith.maxui %i, %c1 : index
      %prevI = arith.subi %ip, %c1 : index
      %ap = tensor.extract %ref#0[%b, %prevI] : tensor<2x64xi32>
      %ch = arith.cmpi ne, %a, %ap : i32
      %chi = arith.select %ch, %one, %zero : i32
      %dc2 = arith.addi %dc, %chi : i32
      %d2 = scf.for %v = %c0 to %c128 step %c1 iter_args(%dd = %d) -> (f32) {
        %x = tensor.extract %ref#1[%b, %i, %v] : tensor<2x64x128xf32>
        %y = tensor.extract %inc#2[%b, %i, %v] : tensor<2x64x128xf32>
        %df = arith.subf %x, %y : f32
        %ad = math.absf %df : f32
        %mx = arith.maximumf %dd, %ad : f32
        scf.yield %mx : f32
      }
      scf.yield %m2, %d2, %dc2 : i32, f32, i32
    }
    scf.yield %inner#0, %inner#1, %inner#2 : i32, f32, i32
  }
  vector.print str "token mismatches: "
  vector.print %cmp#0 : i32
  %tol = arith.constant 1.0e-4 : f32
  %close = arith.cmpf olt, %cmp#1, %tol : f32
  vector.print str "logits within 1e-4: "
  vector.print %close : i1
  %eight = arith.constant 8 : i32
  %varied = arith.cmpi sge, %cmp#2, %eight : i32
  vector.print str "varied output: "
  vector.print %varied : i1
  vector.print str "max logit difference: "
  vector.print %cmp#1 : f32
  vector.print str "token changes: "
  vector.print %cmp#2 : i32
  return
}
