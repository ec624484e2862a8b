using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Streaming.Tests;

/// <summary>
/// The namespace graph of compiled assemblies, read with Mono.Cecil: an edge from a namespace to each namespace whose types
/// its types refer to anywhere in their metadata or code. Unlike <c>using</c> lines, this sees a name qualified relative to
/// an enclosing namespace (<c>Shards.ParquetFooter</c>), a parent namespace's types used without a <c>using</c>, and
/// extension methods and types reached through <c>var</c>.
/// </summary>
/// <remarks>
/// What counts as a reference: a type's base type, interfaces, generic constraints and attributes (typeof arguments
/// included); its fields', properties' and events' types; every method's signature, overrides, local variables and
/// catch types; and the operand of every IL instruction (a type, a method with its declaring type, signature and generic
/// arguments, a field with its declaring type and type). A nested type, compiler-generated ones included (closures,
/// state machines, lambdas' display classes), belongs to its outermost declaring type's namespace. Only namespaces
/// that start with <c>Streaming</c> are nodes: generated code of other namespaces (Orleans' serializers, regex
/// generators) and the framework are left out.
/// </remarks>
internal static class TypeReferenceGraph
{
    /// <summary>Each namespace and the namespaces it refers to, with one reference as an example (<c>from type -> to type</c>).</summary>
    /// <param name="assemblyPaths">The assemblies whose types are read.</param>
    /// <param name="targets">Which namespaces referred to count; null: only the nodes (namespaces of those assemblies' types).</param>
    public static Dictionary<string, Dictionary<string, string>> Build(IEnumerable<string> assemblyPaths, Func<string, bool>? targets = null)
    {
        var paths = assemblyPaths.ToList();
        // Attribute blobs name enum types of other assemblies (the framework's too): the resolver looks beside the
        // assemblies and in the runtime's folder.
        using var resolver = new DefaultAssemblyResolver();
        foreach (var dir in paths.Select(p => Path.GetDirectoryName(Path.GetFullPath(p))!).Distinct()) resolver.AddSearchDirectory(dir);
        resolver.AddSearchDirectory(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory());
        var modules = paths.Select(p => ModuleDefinition.ReadModule(p, new ReaderParameters { ReadSymbols = false, AssemblyResolver = resolver })).ToList();
        try
        {
            var types = modules.SelectMany(m => m.Types).Where(t => IsNode(t.Namespace)).ToList();
            var graph = types.Select(t => t.Namespace).Distinct(StringComparer.Ordinal)
                .ToDictionary(n => n, _ => new Dictionary<string, string>(StringComparer.Ordinal), StringComparer.Ordinal);
            foreach (var type in types)
            {
                var edges = graph[type.Namespace];
                var walker = new Walker(type.Namespace, (target, from, to) =>
                {
                    if (target != type.Namespace && (targets?.Invoke(target) ?? graph.ContainsKey(target))) edges.TryAdd(target, $"{from} -> {to}");
                });
                walker.Type(type);
            }
            return graph;
        }
        finally
        {
            foreach (var m in modules) m.Dispose();
        }
    }

    private static bool IsNode(string ns) => ns == "Streaming" || ns.StartsWith("Streaming.", StringComparison.Ordinal);

    /// <summary>The namespace a type reference names: its outermost declaring type's.</summary>
    private static string NamespaceOf(TypeReference t)
    {
        while (t.DeclaringType is not null) t = t.DeclaringType;
        return t.Namespace;
    }

    /// <summary>Walks one top-level type and everything nested in it, reporting each type it refers to.</summary>
    private sealed class Walker(string ns, Action<string, string, string> edge)
    {
        private string _from = "";

        public void Type(TypeDefinition t)
        {
            _from = t.FullName;
            Ref(t.BaseType);
            foreach (var i in t.Interfaces) { Ref(i.InterfaceType); Attributes(i); }
            GenericParameters(t);
            Attributes(t);
            foreach (var f in t.Fields) { Ref(f.FieldType); Attributes(f); }
            foreach (var p in t.Properties)
            {
                Ref(p.PropertyType);
                foreach (var x in p.Parameters) Ref(x.ParameterType);
                Attributes(p);
            }
            foreach (var e in t.Events) { Ref(e.EventType); Attributes(e); }
            foreach (var m in t.Methods) Method(t, m);
            foreach (var nested in t.NestedTypes) Type(nested);
            _from = t.FullName;
        }

        private void Method(TypeDefinition owner, MethodDefinition m)
        {
            _from = $"{owner.FullName}::{m.Name}";
            Ref(m.ReturnType);
            Attributes(m);
            Attributes(m.MethodReturnType);
            foreach (var p in m.Parameters) { Ref(p.ParameterType); Attributes(p); }
            GenericParameters(m);
            foreach (var o in m.Overrides) MethodRef(o);
            if (!m.HasBody) return;
            foreach (var v in m.Body.Variables) Ref(v.VariableType);
            foreach (var h in m.Body.ExceptionHandlers) Ref(h.CatchType);
            foreach (var i in m.Body.Instructions)
            {
                switch (i.Operand)
                {
                    case TypeReference tr: Ref(tr); break;
                    case MethodReference mr: MethodRef(mr); break;
                    case FieldReference fr: Ref(fr.DeclaringType); Ref(fr.FieldType); break;
                    case CallSite cs: Ref(cs.ReturnType); foreach (var p in cs.Parameters) Ref(p.ParameterType); break;
                }
            }
        }

        private void MethodRef(MethodReference m)
        {
            Ref(m.DeclaringType);
            Ref(m.ReturnType);
            foreach (var p in m.Parameters) Ref(p.ParameterType);
            if (m is GenericInstanceMethod g) foreach (var a in g.GenericArguments) Ref(a);
        }

        private void GenericParameters(IGenericParameterProvider p)
        {
            foreach (var g in p.GenericParameters)
            {
                foreach (var c in g.Constraints) { Ref(c.ConstraintType); Attributes(c); }
                Attributes(g);
            }
        }

        private void Attributes(ICustomAttributeProvider p)
        {
            if (!p.HasCustomAttributes) return;
            foreach (var a in p.CustomAttributes)
            {
                Ref(a.AttributeType);
                Ref(a.Constructor.DeclaringType);
                // A blob that names a type this reader cannot resolve is skipped, not fatal: the attribute's type is counted.
                try
                {
                    foreach (var arg in a.ConstructorArguments) Argument(arg);
                    foreach (var arg in a.Properties) Argument(arg.Argument);
                    foreach (var arg in a.Fields) Argument(arg.Argument);
                }
                catch (AssemblyResolutionException) { }
            }
        }

        private void Argument(CustomAttributeArgument arg)
        {
            Ref(arg.Type);
            switch (arg.Value)
            {
                case TypeReference t: Ref(t); break;
                case CustomAttributeArgument inner: Argument(inner); break;
                case CustomAttributeArgument[] many: foreach (var x in many) Argument(x); break;
            }
        }

        private void Ref(TypeReference? t)
        {
            if (t is null || t is GenericParameter) return;
            switch (t)
            {
                case GenericInstanceType g:
                    Ref(g.ElementType);
                    foreach (var a in g.GenericArguments) Ref(a);
                    return;
                case FunctionPointerType f:
                    Ref(f.ReturnType);
                    foreach (var p in f.Parameters) Ref(p.ParameterType);
                    return;
                case IModifierType mod:
                    Ref(mod.ModifierType);
                    Ref(mod.ElementType);
                    return;
                case TypeSpecification s: // arrays, pointers, by-refs, pinned
                    Ref(s.ElementType);
                    return;
            }
            string target = NamespaceOf(t);
            if (target != ns) edge(target, _from, t.FullName);
        }
    }
}
