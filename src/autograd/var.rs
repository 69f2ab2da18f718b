//! `Var`: a GPU tensor in the reverse-mode graph, with its gradient and the node that made it.
//!
//! Each op makes its output `Var` and records a [`BackwardOp`] holding only what it saved from the
//! forward pass. [`Var::backward`] topologically sorts the graph and walks it once in reverse
//! (micrograd's loop), accumulating gradients; leaves keep theirs in [`Var::grad`].

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use oddity_kernels::elementwise;
use oddity_kernels::{Error, Result, Tensor};

/// Pushes an output gradient back to the op's inputs. `needs[i]` says whether input `i` wants a
/// gradient; return `None` for the others (and for inputs that are not differentiable).
pub trait BackwardOp {
    fn backward(&self, gy: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>>;
}

struct Node {
    op: &'static str,
    parents: Vec<Var>,
    /// `None` for ops that have no backward: asking for a gradient through them is an error.
    backward: Option<Box<dyn BackwardOp>>,
}

struct VarInner {
    id: u64,
    value: Tensor,
    grad: RefCell<Option<Tensor>>,
    requires_grad: Cell<bool>,
    node: Option<Node>,
}

/// A tensor in the graph. Clones share the same variable.
#[derive(Clone)]
pub struct Var(Rc<VarInner>);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    /// This thread's override of `ODDITY_CHECK_FINITE` (see [`set_check_finite`]).
    static CHECK_FINITE: Cell<Option<bool>> = const { Cell::new(None) };
    /// The first non-finite op output seen while checking, not yet reported.
    static FIRST_NON_FINITE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// True when every op output and gradient is checked for NaN and infinity: the debug mode
/// `ODDITY_CHECK_FINITE=1` (read once), or [`set_check_finite`] on this thread. Each check
/// reads the tensor back, so it is slow; the default checks only the loss (in the training
/// loop) and the input batches.
pub fn check_finite_enabled() -> bool {
    static FROM_ENV: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    CHECK_FINITE.with(|c| c.get()).unwrap_or_else(|| {
        *FROM_ENV.get_or_init(|| {
            std::env::var("ODDITY_CHECK_FINITE").is_ok_and(|v| matches!(v.as_str(), "1" | "true" | "yes"))
        })
    })
}

/// Turns the finiteness checks on or off for this thread, whatever `ODDITY_CHECK_FINITE` says.
pub fn set_check_finite(on: bool) {
    CHECK_FINITE.with(|c| c.set(Some(on)));
}

/// `Err(Error::NonFinite)` naming the op whose output first held a NaN or infinity since the
/// last call (only while the checks are on); clears the record. [`Var::backward`] calls it
/// first, so a training step reports the op, not only the loss.
pub fn check_finite() -> Result<()> {
    match FIRST_NON_FINITE.with(|f| f.borrow_mut().take()) {
        None => Ok(()),
        Some(m) => Err(Error::NonFinite(m)),
    }
}

/// Index and value of the first non-finite element of `t`. A failed readback counts as
/// finite here: the device error surfaces on the next real readback.
fn first_non_finite(t: &Tensor) -> Option<(usize, f32)> {
    t.to_vec().ok()?.into_iter().enumerate().find(|(_, v)| !v.is_finite())
}

/// Runs `f` without recording the graph (inference, metric passes, optimizer updates).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

/// True unless inside [`no_grad`].
pub fn grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

impl Var {
    fn make(value: Tensor, requires_grad: bool, node: Option<Node>) -> Var {
        Var(Rc::new(VarInner {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            value,
            grad: RefCell::new(None),
            requires_grad: Cell::new(requires_grad),
            node,
        }))
    }

    /// A leaf that needs no gradient (inputs, targets).
    pub fn constant(value: Tensor) -> Var {
        Var::make(value, false, None)
    }

    /// A leaf whose gradient is wanted (parameters, or inputs for input gradients).
    pub fn leaf(value: Tensor) -> Var {
        Var::make(value, true, None)
    }

    /// Records the output of an op. The output needs a gradient when recording is on and any
    /// parent needs one; otherwise no node is kept and the saved tensors are dropped at once.
    pub fn from_op(value: Tensor, op: &'static str, parents: &[&Var], backward: Option<Box<dyn BackwardOp>>) -> Var {
        if check_finite_enabled() && FIRST_NON_FINITE.with(|f| f.borrow().is_none()) {
            if let Some((i, v)) = first_non_finite(&value) {
                let inputs: Vec<String> = parents.iter().map(|p| format!("{} {:?}", p.op_name(), p.shape())).collect();
                let message = format!(
                    "op {op} produced {v} at flat index {i} of its output {:?} (inputs: {}) (ODDITY_CHECK_FINITE)",
                    value.shape(),
                    inputs.join(", ")
                );
                FIRST_NON_FINITE.with(|f| *f.borrow_mut() = Some(message));
            }
        }
        let requires = grad_enabled() && parents.iter().any(|p| p.requires_grad());
        if !requires {
            return Var::constant(value);
        }
        let parents = parents.iter().map(|&p| p.clone()).collect();
        Var::make(value, true, Some(Node { op, parents, backward }))
    }

    pub fn value(&self) -> &Tensor {
        &self.0.value
    }

    pub fn shape(&self) -> &[usize] {
        self.0.value.shape()
    }

    pub fn id(&self) -> u64 {
        self.0.id
    }

    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad.get()
    }

    /// Freezes (false) or unfreezes (true) a leaf. Frozen parameters take part in the forward
    /// pass but receive no gradient, while gradients still flow through them to other inputs.
    pub fn set_requires_grad(&self, on: bool) -> Result<()> {
        if self.0.node.is_some() {
            return Err(Error::Unsupported(format!(
                "set_requires_grad on the output of {}: only leaves can be frozen",
                self.op_name()
            )));
        }
        self.0.requires_grad.set(on);
        Ok(())
    }

    /// The op that made this variable, or "leaf".
    pub fn op_name(&self) -> &'static str {
        self.0.node.as_ref().map_or("leaf", |n| n.op)
    }

    /// The accumulated gradient of a leaf (after [`Var::backward`]).
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.borrow().clone()
    }

    pub fn zero_grad(&self) {
        self.0.grad.borrow_mut().take();
    }

    /// Backpropagates from a one-element variable (the loss), seeding its gradient with 1.
    pub fn backward(&self) -> Result<()> {
        if self.value().numel() != 1 {
            return Err(Error::Shape(format!(
                "backward() needs a one-element loss, got shape {:?}; use backward_with(grad)",
                self.shape()
            )));
        }
        let one = Tensor::from_slice(self.value().context(), self.shape(), &[1.0])?;
        self.backward_with(&one)
    }

    /// Backpropagates `grad` (same shape as this variable) through the graph.
    pub fn backward_with(&self, grad: &Tensor) -> Result<()> {
        if grad.shape() != self.shape() {
            return Err(Error::Shape(format!(
                "backward_with: gradient {:?} for a variable of shape {:?}",
                grad.shape(),
                self.shape()
            )));
        }
        if !self.requires_grad() {
            return Err(Error::Unsupported(
                "backward() through a graph with no variable that requires a gradient".into(),
            ));
        }
        check_finite()?;
        let checking = check_finite_enabled();
        let order = self.topological_order();
        let mut grads: HashMap<u64, Tensor> = HashMap::new();
        grads.insert(self.id(), grad.clone());
        for var in order.iter().rev() {
            let Some(gy) = grads.remove(&var.id()) else { continue };
            let Some(node) = &var.0.node else {
                var.accumulate_leaf(gy)?;
                continue;
            };
            let backward = node.backward.as_ref().ok_or_else(|| {
                Error::Unsupported(format!("op {} has no backward; wrap its use in no_grad()", node.op))
            })?;
            let needs: Vec<bool> = node.parents.iter().map(Var::requires_grad).collect();
            let parent_grads = backward.backward(&gy, &needs)?;
            for (k, ((parent, g), need)) in node.parents.iter().zip(parent_grads).zip(&needs).enumerate() {
                let (Some(g), true) = (g, *need) else { continue };
                if checking {
                    if let Some((i, v)) = first_non_finite(&g) {
                        return Err(Error::NonFinite(format!(
                            "the backward of op {} gave input {k} ({} {:?}) a gradient holding {v} at flat index {i} (ODDITY_CHECK_FINITE)",
                            node.op,
                            parent.op_name(),
                            parent.shape()
                        )));
                    }
                }
                if g.shape() != parent.shape() {
                    return Err(Error::Shape(format!(
                        "backward of {} gave a gradient of shape {:?} for an input of shape {:?}",
                        node.op,
                        g.shape(),
                        parent.shape()
                    )));
                }
                let summed = match grads.remove(&parent.id()) {
                    Some(prev) => elementwise::add(&prev, &g)?,
                    None => g,
                };
                grads.insert(parent.id(), summed);
            }
        }
        Ok(())
    }

    fn accumulate_leaf(&self, g: Tensor) -> Result<()> {
        let mut slot = self.0.grad.borrow_mut();
        *slot = Some(match slot.take() {
            Some(prev) => elementwise::add(&prev, &g)?,
            None => g,
        });
        Ok(())
    }

    /// Variables reachable from `self` through nodes that need gradients, parents before children.
    fn topological_order(&self) -> Vec<Var> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        // Iterative DFS: deep networks would overflow the stack with recursion.
        let mut stack: Vec<(Var, bool)> = vec![(self.clone(), false)];
        while let Some((var, expanded)) = stack.pop() {
            if expanded {
                order.push(var);
                continue;
            }
            if !seen.insert(var.id()) {
                continue;
            }
            stack.push((var.clone(), true));
            if let Some(node) = &var.0.node {
                for p in node.parents.iter().filter(|p| p.requires_grad()) {
                    if !seen.contains(&p.id()) {
                        stack.push((p.clone(), false));
                    }
                }
            }
        }
        order
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var({:?}, {}, requires_grad={})", self.shape(), self.op_name(), self.requires_grad())
    }
}
