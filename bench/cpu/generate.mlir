// CPU benchmark: greedy generation with the example model
// (examples/llama-tiny.mlir), one sequence, a 16-token prompt, 64, 256 and
// 1024 new tokens, two ways: recomputing the whole sequence with @llama at
// every step, and @llama_prefill then one @llama_decode per token. Prints
// seconds per loop and checks that both produce the same tokens.
// Run with bench/cpu/run.sh.


func.func private @rtclock() -> f64

/// Recompute: @llama on every prefix; returns the tokens and seconds.
func.func @recompute(%steps: index, %prompt: tensor<1x16xi32>, %embed: tensor<128x64xf32>, %norm0: tensor<64xf32>, %wq0: tensor<64x64xf32>, %wk0: tensor<64x16xf32>, %wv0: tensor<64x16xf32>, %wo0: tensor<64x64xf32>, %mlpnorm0: tensor<64xf32>, %wgate0: tensor<64x128xf32>, %wup0: tensor<64x128xf32>, %wdown0: tensor<128x64xf32>, %norm1: tensor<64xf32>, %wq1: tensor<64x64xf32>, %wk1: tensor<64x16xf32>, %wv1: tensor<64x16xf32>, %wo1: tensor<64x64xf32>, %mlpnorm1: tensor<64xf32>, %wgate1: tensor<64x128xf32>, %wup1: tensor<64x128xf32>, %wdown1: tensor<128x64xf32>, %finalnorm: tensor<64xf32>) -> (tensor<1x1040xi32>, f64) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %t0 = func.call @rtclock() : () -> f64
  %buf0 = tensor.empty() : tensor<1x1040xi32>
  %buf1 = tensor.insert_slice %prompt into %buf0[0, 0] [1, 16] [1, 1] : tensor<1x16xi32> into tensor<1x1040xi32>
  %out = scf.for %i = %c0 to %steps step %c1 iter_args(%buf = %buf1) -> (tensor<1x1040xi32>) {
    %n = arith.addi %c16, %i : index
    %tok = tensor.extract_slice %buf[0, 0] [1, %n] [1, 1] : tensor<1x1040xi32> to tensor<1x?xi32>
    %tokd = tensor.cast %tok : tensor<1x?xi32> to tensor<?x?xi32>
    %pos = tensor.generate %c1, %n {
    ^bb0(%pb: index, %ps: index):
      %p = arith.index_cast %ps : index to i32
      tensor.yield %p : i32
    } : tensor<?x?xi32>
    %all = func.call @llama(%tokd, %pos, %embed, %norm0, %wq0, %wk0, %wv0, %wo0, %mlpnorm0, %wgate0, %wup0, %wdown0, %norm1, %wq1, %wk1, %wv1, %wo1, %mlpnorm1, %wgate1, %wup1, %wdown1, %finalnorm)
        : (tensor<?x?xi32>, tensor<?x?xi32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>) -> tensor<?x?x128xf32>
    %last = arith.subi %n, %c1 : index
    %row = tensor.extract_slice %all[0, %last, 0] [1, 1, 128] [1, 1, 1] : tensor<?x?x128xf32> to tensor<128xf32>
    %next = func.call @argmax(%row) : (tensor<128xf32>) -> i32
    %buf2 = tensor.insert %next into %buf[%c0, %n] : tensor<1x1040xi32>
    scf.yield %buf2 : tensor<1x1040xi32>
  }
  %t1 = func.call @rtclock() : () -> f64
  %dt = arith.subf %t1, %t0 : f64
  return %out, %dt : tensor<1x1040xi32>, f64
}

/// Prefill once, then decode one token per step; returns the tokens and
/// seconds.
func.func @incremental(%steps: index, %prompt: tensor<1x16xi32>, %embed: tensor<128x64xf32>, %norm0: tensor<64xf32>, %wq0: tensor<64x64xf32>, %wk0: tensor<64x16xf32>, %wv0: tensor<64x16xf32>, %wo0: tensor<64x64xf32>, %mlpnorm0: tensor<64xf32>, %wgate0: tensor<64x128xf32>, %wup0: tensor<64x128xf32>, %wdown0: tensor<128x64xf32>, %norm1: tensor<64xf32>, %wq1: tensor<64x64xf32>, %wk1: tensor<64x16xf32>, %wv1: tensor<64x16xf32>, %wo1: tensor<64x64xf32>, %mlpnorm1: tensor<64xf32>, %wgate1: tensor<64x128xf32>, %wup1: tensor<64x128xf32>, %wdown1: tensor<128x64xf32>, %finalnorm: tensor<64xf32>) -> (tensor<1x1040xi32>, f64) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %cap = arith.addi %c16, %steps : index
  %t0 = func.call @rtclock() : () -> f64
  %buf0 = tensor.empty() : tensor<1x1040xi32>
  %buf1 = tensor.insert_slice %prompt into %buf0[0, 0] [1, 16] [1, 1] : tensor<1x16xi32> into tensor<1x1040xi32>
  %promptd = tensor.cast %prompt : tensor<1x16xi32> to tensor<?x?xi32>
  %len = arith.constant dense<16> : tensor<1xi32>
  %lend = tensor.cast %len : tensor<1xi32> to tensor<?xi32>
  %pre:3 = func.call @llama_prefill(%promptd, %embed, %norm0, %wq0, %wk0, %wv0, %wo0, %mlpnorm0, %wgate0, %wup0, %wdown0, %norm1, %wq1, %wk1, %wv1, %wo1, %mlpnorm1, %wgate1, %wup1, %wdown1, %finalnorm, %lend, %cap)
      : (tensor<?x?xi32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<?xi32>, index)
      -> (tensor<?x1x128xf32>, !kvc.cache<?x1x?x16xf32>, !kvc.cache<?x1x?x16xf32>)
  %row0 = tensor.extract_slice %pre#0[0, 0, 0] [1, 1, 128] [1, 1, 1] : tensor<?x1x128xf32> to tensor<128xf32>
  %first = func.call @argmax(%row0) : (tensor<128xf32>) -> i32
  %buf2 = tensor.insert %first into %buf1[%c0, %c16] : tensor<1x1040xi32>
  %out:2 = scf.for %i = %c1 to %steps step %c1 iter_args(%buf = %buf2, %prev = %first) -> (tensor<1x1040xi32>, i32) {
    %p = arith.addi %c16, %i : index
    %pm1 = arith.subi %p, %c1 : index
    %tok = tensor.from_elements %prev : tensor<1x1xi32>
    %tokd = tensor.cast %tok : tensor<1x1xi32> to tensor<?x?xi32>
    %p32 = arith.index_cast %pm1 : index to i32
    %pos = tensor.from_elements %p32 : tensor<1xi32>
    %posd = tensor.cast %pos : tensor<1xi32> to tensor<?xi32>
    %logits = func.call @llama_decode(%tokd, %embed, %norm0, %wq0, %wk0, %wv0, %wo0, %mlpnorm0, %wgate0, %wup0, %wdown0, %norm1, %wq1, %wk1, %wv1, %wo1, %mlpnorm1, %wgate1, %wup1, %wdown1, %finalnorm, %posd, %pre#1, %pre#2)
        : (tensor<?x?xi32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<?xi32>, !kvc.cache<?x1x?x16xf32>, !kvc.cache<?x1x?x16xf32>) -> tensor<?x?x128xf32>
    %row = tensor.extract_slice %logits[0, 0, 0] [1, 1, 128] [1, 1, 1] : tensor<?x?x128xf32> to tensor<128xf32>
    %next = func.call @argmax(%row) : (tensor<128xf32>) -> i32
    %buf3 = tensor.insert %next into %buf[%c0, %p] : tensor<1x1040xi32>
    scf.yield %buf3, %next : tensor<1x1040xi32>, i32
  }
  %t1 = func.call @rtclock() : () -> f64
  %dt = arith.subf %t1, %t0 : f64
  return %out#0, %dt : tensor<1x1040xi32>, f64
}

func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  %w:20 = func.call @llama_weights() : () -> (tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>)

  %prompt = arith.constant dense<[[5, 17, 42, 9, 3, 101, 77, 64, 12, 88, 23, 54, 1, 99, 31, 70]]> : tensor<1x16xi32>
  %ns = arith.constant dense<[64, 256, 1024]> : tensor<3xindex>
  %c3 = arith.constant 3 : index
  scf.for %k = %c0 to %c3 step %c1 {
    %steps = tensor.extract %ns[%k] : tensor<3xindex>
    %a:2 = func.call @recompute(%steps, %prompt, %w#0, %w#1, %w#2, %w#3, %w#4, %w#5, %w#6, %w#7, %w#8, %w#9, %w#10, %w#11, %w#12, %w#13, %w#14, %w#15, %w#16, %w#17, %w#18, %w#19)
        : (index, tensor<1x16xi32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>) -> (tensor<1x1040xi32>, f64)
    %b:2 = func.call @incremental(%steps, %prompt, %w#0, %w#1, %w#2, %w#3, %w#4, %w#5, %w#6, %w#7, %w#8, %w#9, %w#10, %w#11, %w#12, %w#13, %w#14, %w#15, %w#16, %w#17, %w#18, %w#19)
        : (index, tensor<1x16xi32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>, tensor<64x64xf32>, tensor<64x16xf32>, tensor<64x16xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64x128xf32>, tensor<64x128xf32>, tensor<128x64xf32>, tensor<64xf32>) -> (tensor<1x1040xi32>, f64)
    %end = arith.addi %c16, %steps : index
    %zero = arith.constant 0 : i32
    %one = arith.constant 1 : i32
    %mis = scf.for %i = %c0 to %end step %c1 iter_args(%m = %zero) -> (i32) {
      %x = tensor.extract %a#0[%c0, %i] : tensor<1x1040xi32>
      %y = tensor.extract %b#0[%c0, %i] : tensor<1x1040xi32>
      %ne = arith.cmpi ne, %x, %y : i32
      %d = arith.select %ne, %one, %zero : i32
      %m2 = arith.addi %m, %d : i32
      scf.yield %m2 : i32
    }
    %n32 = arith.index_cast %steps : index to i32
    vector.print str "generated "
    vector.print %n32 : i32
    vector.print str "  recompute seconds "
    vector.print %a#1 : f64
    vector.print str "  prefill+decode seconds "
    vector.print %b#1 : f64
    %ratio = arith.divf %a#1, %b#1 : f64
    vector.print str "  speedup "
    vector.print %ratio : f64
    vector.print str "  token mismatches "
    vector.print %mis : i32
  }
  return
}
