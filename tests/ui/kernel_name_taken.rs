use keops::keops;

// A kernel named like another item of the module: the error points at the kernel's name
// in the macro input, not at the whole macro.
#[allow(dead_code)]
fn gauss() {}

keops! { gauss(x_i: 3, y_j: 3) = Sum_j(Exp(-SqDist(x_i, y_j))) }

fn main() {}
