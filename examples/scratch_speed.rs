//! scratch
use keops::keops;
use std::time::Instant;
fn main() {
    let k = keops!(x_i: 3; y_j: 3; b_j: 1; Sum_j(Exp(-SqDist(x_i, y_j)) * b_j));
    let n = 20000;
    let mut s = 1u64;
    let mut r = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f32) / (1u64 << 31) as f32
    };
    let x: Vec<[f32; 3]> = (0..n).map(|_| [r(), r(), r()]).collect();
    let y: Vec<[f32; 3]> = (0..n).map(|_| [r(), r(), r()]).collect();
    let b: Vec<[f32; 1]> = (0..n).map(|_| [r()]).collect();
    for _ in 0..3 {
        let t = Instant::now();
        let a = k.eval(&x, &y, &b).unwrap();
        let dt = t.elapsed().as_secs_f64();
        println!(
            "{:.3} s, {:.3} G pairs/s, a0 = {}",
            dt,
            (n * n) as f64 / dt / 1e9,
            a[0][0]
        );
    }
}
