//! The formula store: a hash-consed DAG of nodes plus the variables they refer to.
//!
//! Every node is interned, so structurally equal sub-expressions are one node: common
//! sub-expressions are shared for free and nested gradients stay small.

use crate::dim::{Dim, DimSolver};
use crate::error::TokRange;
use crate::ops::rows::Op;
use std::collections::{HashMap, HashSet};

/// A node of the formula DAG.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

/// A variable of a formula.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub u32);

/// How a variable is indexed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cat {
    /// One vector per row i (`Vi`, category 0).
    I,
    /// One vector per column j (`Vj`, category 1).
    J,
    /// One vector shared by all (i, j) (`Pm`, category 2).
    P,
    /// A placeholder used while differentiating; never an input.
    Temp,
}

impl Cat {
    /// KeOps category number (0, 1, 2).
    pub fn keops_number(self) -> i64 {
        match self {
            Cat::I => 0,
            Cat::J => 1,
            Cat::P => 2,
            Cat::Temp => 3,
        }
    }

    /// The other of I and J.
    pub fn transposed(self) -> Cat {
        match self {
            Cat::I => Cat::J,
            Cat::J => Cat::I,
            c => c,
        }
    }
}

/// Where the data of a variable comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum VarSource {
    /// The user's argument at this position.
    Arg(usize),
    /// The output of an earlier step of the program (gradients use forward results).
    Buffer(usize),
    /// No data: a placeholder of the differentiation engine.
    Temp,
}

/// A variable: name, category, dimension, data source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarInfo {
    /// Name in the source (`x`, `x_i`), if any.
    pub name: Option<String>,
    /// Indexing category.
    pub cat: Cat,
    /// Dimension (possibly symbolic).
    pub dim: Dim,
    /// Data source.
    pub source: VarSource,
    /// Where it was declared or first used.
    pub declared_at: Option<TokRange>,
}

impl VarInfo {
    /// Argument position, for user variables.
    pub fn position(&self) -> Option<usize> {
        match self.source {
            VarSource::Arg(p) => Some(p),
            _ => None,
        }
    }
}

/// Integer parameters of operations (`Pow(f, 3)`, `TensorDot(..., (2, 2), ...)`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Param {
    /// One integer.
    Int(i64),
    /// A list of integers.
    List(Vec<i64>),
}

impl Param {
    /// The integer, or 0 for a list (rules check kinds before use).
    pub fn int(&self) -> i64 {
        match self {
            Param::Int(i) => *i,
            Param::List(_) => 0,
        }
    }

    /// The list (a single integer reads as a one-element list).
    pub fn list(&self) -> Vec<i64> {
        match self {
            Param::Int(i) => vec![*i],
            Param::List(l) => l.clone(),
        }
    }
}

/// A node: a variable, a constant, or an operation on other nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// A variable.
    Var(VarId),
    /// A scalar constant, by the bits of its f64 value (never 0: zero is `Zero(1)`).
    Const(u64),
    /// The zero vector of a dimension.
    Zero(Dim),
    /// An operation with its arguments and integer parameters.
    Op(Op, Vec<NodeId>, Vec<Param>),
}

/// A node with its dimension.
#[derive(Clone, Debug)]
pub struct NodeData {
    /// The node.
    pub node: Node,
    /// Its dimension.
    pub dim: Dim,
}

/// The hash-consed DAG and the variable table of a program.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: Vec<NodeData>,
    index: HashMap<Node, NodeId>,
    /// Variables, indexed by [`VarId`].
    pub vars: Vec<VarInfo>,
    /// A bound on the nodes, lower than [`crate::builder::NODE_LIMIT`]; `None` for that.
    node_limit: Option<usize>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bounds the number of nodes the graph may grow to (counting those it has) below
    /// [`crate::builder::NODE_LIMIT`]: building a node past it is an
    /// [`ErrorKind::Limit`](crate::ErrorKind::Limit) error. A bound above `NODE_LIMIT`
    /// leaves `NODE_LIMIT`. Clones keep the bound, so it holds for the gradients of a
    /// [`crate::Program`] (whose graph they extend): a service can give each request a
    /// smaller budget, and tests can reach the limit quickly.
    pub fn set_node_limit(&mut self, limit: usize) {
        self.node_limit = Some(limit);
    }

    /// The bound set by [`Graph::set_node_limit`], if any.
    pub fn node_limit(&self) -> Option<usize> {
        self.node_limit
    }

    /// Interns a node with its dimension (the dimension is a function of the node).
    pub fn intern(&mut self, node: Node, dim: Dim) -> NodeId {
        let node = match node {
            Node::Const(bits) if f64::from_bits(bits) == 0.0 => Node::Zero(Dim::one()),
            n => n,
        };
        if let Some(id) = self.index.get(&node) {
            return *id;
        }
        let id = NodeId(self.nodes.len() as u32);
        self.index.insert(node.clone(), id);
        self.nodes.push(NodeData { node, dim });
        id
    }

    /// The node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize].node
    }

    /// Its dimension.
    pub fn dim(&self, id: NodeId) -> &Dim {
        &self.nodes[id.0 as usize].dim
    }

    /// Known dimension (after instantiation), or 0 when still symbolic.
    pub fn known_dim(&self, id: NodeId) -> Option<usize> {
        self.dim(id).as_known()
    }

    /// Number of nodes ever interned.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no node was interned.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a variable and its node.
    pub fn add_var(&mut self, info: VarInfo) -> (VarId, NodeId) {
        let v = VarId(self.vars.len() as u32);
        let dim = info.dim.clone();
        self.vars.push(info);
        (v, self.intern(Node::Var(v), dim))
    }

    /// The node of a variable.
    pub fn var_node(&mut self, v: VarId) -> NodeId {
        let dim = self.vars[v.0 as usize].dim.clone();
        self.intern(Node::Var(v), dim)
    }

    /// The variable's information.
    pub fn var(&self, v: VarId) -> &VarInfo {
        &self.vars[v.0 as usize]
    }

    /// A scalar constant.
    pub fn constant(&mut self, x: f64) -> NodeId {
        self.intern(Node::Const(x.to_bits()), Dim::one())
    }

    /// The value of a scalar constant node (`Zero(1)` reads as 0).
    pub fn const_value(&self, id: NodeId) -> Option<f64> {
        match self.node(id) {
            Node::Const(b) => Some(f64::from_bits(*b)),
            Node::Zero(d) if d.is(1) => Some(0.0),
            _ => None,
        }
    }

    /// True for `Zero(d)`.
    pub fn is_zero(&self, id: NodeId) -> bool {
        matches!(self.node(id), Node::Zero(_))
    }

    /// Nodes reachable from `roots`, children before parents, in a deterministic order.
    pub fn topo(&self, roots: &[NodeId]) -> Vec<NodeId> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for &r in roots {
            // Iterative post-order: deep gradients must not overflow the stack.
            let mut stack = vec![(r, false)];
            while let Some((n, expanded)) = stack.pop() {
                if expanded {
                    out.push(n);
                    continue;
                }
                if !seen.insert(n) {
                    continue;
                }
                stack.push((n, true));
                if let Node::Op(_, args, _) = self.node(n) {
                    for a in args.iter().rev() {
                        if !seen.contains(a) {
                            stack.push((*a, false));
                        }
                    }
                }
            }
        }
        out
    }

    /// Number of distinct nodes reachable from `roots` (the size of the shared DAG).
    pub fn count(&self, roots: &[NodeId]) -> usize {
        self.topo(roots).len()
    }

    /// Number of nodes of the same formula written as a tree (no sharing).
    pub fn tree_size(&self, root: NodeId) -> u64 {
        let mut size: HashMap<NodeId, u64> = HashMap::new();
        for n in self.topo(&[root]) {
            let s = match self.node(n) {
                Node::Op(_, args, _) => 1 + args.iter().map(|a| size[a]).sum::<u64>(),
                _ => 1,
            };
            size.insert(n, s.min(u64::MAX / 4));
        }
        size[&root]
    }

    /// Variables used by the formulas at `roots`.
    pub fn vars_of(&self, roots: &[NodeId]) -> Vec<VarId> {
        let mut out: Vec<VarId> = self
            .topo(roots)
            .into_iter()
            .filter_map(|n| match self.node(n) {
                Node::Var(v) => Some(*v),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The nodes under `root` that depend on variable `v` (including `root` if it does).
    pub fn depending_on(&self, root: NodeId, v: VarId) -> HashSet<NodeId> {
        let mut dep = HashSet::new();
        for n in self.topo(&[root]) {
            let d = match self.node(n) {
                Node::Var(w) => *w == v,
                Node::Op(_, args, _) => args.iter().any(|a| dep.contains(a)),
                _ => false,
            };
            if d {
                dep.insert(n);
            }
        }
        dep
    }

    /// Applies the solver's bindings to every dimension (after checking a whole program).
    pub fn resolve_dims(&mut self, solver: &DimSolver) {
        for v in &mut self.vars {
            v.dim = solver.resolve(&v.dim);
        }
        self.index.clear();
        for (k, nd) in self.nodes.iter_mut().enumerate() {
            nd.dim = solver.resolve(&nd.dim);
            if let Node::Zero(d) = &mut nd.node {
                *d = solver.resolve(d);
            }
            self.index
                .entry(nd.node.clone())
                .or_insert(NodeId(k as u32));
        }
    }
}
