//! The reverse-mode graph: gradient checks of composite expressions, accumulation, no-grad,
//! frozen leaves, and the errors for ops without a backward.

use oddity::autograd::{gradcheck, no_grad, BackwardOp, Var};
use oddity::kernels::gpu_or_skip;
use oddity::kernels::testing::TestRng;
use oddity::kernels::{Result, Tensor};

fn data(rng: &mut TestRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect()
}

#[test]
fn composite_expression_with_broadcasting_passes_gradcheck() {
    let ctx = gpu_or_skip!();
    let mut rng = TestRng::new(11);
    // y = sigmoid(a * b + a) / (1 + exp(b)) - tanh(a)^2, a: [2, 3, 5], b: [3, 1] (broadcast).
    let f = |v: &[Var]| -> Result<Var> {
        let (a, b) = (&v[0], &v[1]);
        let num = a.mul(b)?.add(a)?.sigmoid()?;
        let den = b.exp()?.add_scalar(1.0)?;
        num.div(&den)?.sub(&a.tanh()?.powf(2.0)?)
    };
    let inputs = vec![(vec![2, 3, 5], data(&mut rng, 30)), (vec![3, 1], data(&mut rng, 3))];
    // f32 forward with eps 1e-2: differences are accurate to ~1e-4 here; 2e-3 leaves margin
    // while a wrong derivative (errors of order 1e-1) still fails.
    gradcheck(&ctx, &f, &inputs, 1e-2, 2e-3, 2e-3).unwrap();
}

#[test]
fn gradients_accumulate_across_backward_calls_and_reset() {
    let ctx = gpu_or_skip!();
    let x = Var::leaf(Tensor::from_slice(&ctx, &[1], &[3.0]).unwrap());
    // d(x^2)/dx = 2x = 6
    for expected in [6.0, 12.0] {
        x.mul(&x).unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec().unwrap(), vec![expected]);
    }
    x.zero_grad();
    assert!(x.grad().is_none());
}

#[test]
fn no_grad_records_nothing_and_frozen_leaves_get_no_gradient() {
    let ctx = gpu_or_skip!();
    let w = Var::leaf(Tensor::from_slice(&ctx, &[2], &[1.0, 2.0]).unwrap());
    let x = Var::leaf(Tensor::from_slice(&ctx, &[2], &[3.0, 4.0]).unwrap());
    let y = no_grad(|| w.mul(&x).unwrap());
    assert!(!y.requires_grad());
    assert_eq!(y.op_name(), "leaf");

    w.set_requires_grad(false).unwrap();
    let y = w.mul(&x).unwrap();
    y.backward_with(&Tensor::from_slice(&ctx, &[2], &[1.0, 1.0]).unwrap()).unwrap();
    assert!(w.grad().is_none(), "a frozen parameter receives no gradient");
    // dy/dx = w: the input gradient flows through the frozen parameter.
    assert_eq!(x.grad().unwrap().to_vec().unwrap(), vec![1.0, 2.0]);
    assert!(y.set_requires_grad(false).is_err(), "only leaves can be frozen");
}

#[test]
fn ops_without_backward_and_bad_seeds_are_errors() {
    let ctx = gpu_or_skip!();
    let x = Var::leaf(Tensor::from_slice(&ctx, &[3], &[1.0, 2.0, 3.0]).unwrap());
    let rounded = Var::from_op(x.value().duplicate().unwrap(), "round", &[&x], None);
    let err = rounded.backward_with(&Tensor::from_slice(&ctx, &[3], &[1.0; 3]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("round") && err.contains("no backward"), "{err}");

    let err = x.mul(&x).unwrap().backward().unwrap_err().to_string();
    assert!(err.contains("one-element") && err.contains("[3]"), "{err}");

    struct WrongShape;
    impl BackwardOp for WrongShape {
        fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(gy.reshape(&[1, 3])?)])
        }
    }
    let y = Var::from_op(x.value().clone(), "wrong", &[&x], Some(Box::new(WrongShape)));
    let err = y.backward_with(&Tensor::from_slice(&ctx, &[3], &[1.0; 3]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("wrong") && err.contains("[1, 3]"), "{err}");
}

#[test]
fn gradcheck_catches_a_wrong_backward() {
    let ctx = gpu_or_skip!();
    // y = 3x recorded with a backward that returns gy (missing the factor 3).
    struct MissingFactor;
    impl BackwardOp for MissingFactor {
        fn backward(&self, gy: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(gy.clone())])
        }
    }
    let f = |v: &[Var]| -> Result<Var> {
        let y = oddity::kernels::elementwise::mul_scalar(v[0].value(), 3.0)?;
        Ok(Var::from_op(y, "triple", &[&v[0]], Some(Box::new(MissingFactor))))
    };
    let err = gradcheck(&ctx, &f, &[(vec![4], vec![0.1, 0.2, 0.3, 0.4])], 1e-2, 1e-3, 1e-3).unwrap_err();
    assert!(err.to_string().contains("central difference"), "{err}");
}
