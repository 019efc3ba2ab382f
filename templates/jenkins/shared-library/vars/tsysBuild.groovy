import io.tsysci.TsysCi

/**
 * tsysBuild: builds the app's image with `tsys-ci build` (no Docker daemon),
 * labelled with the commit, branch, build number and job Jenkins knows.
 *
 *   tsysBuild base: 'harbor.company.example/library/node:22-slim',
 *             cmd: ['node', 'server.js'], ports: ['8080']
 *
 * Returns tsys-ci's result ({digest, layout, labels, resultFile}); tsysPush
 * reads the same file by default, so the image passes on without variables.
 */
def call(Map args = [:]) {
    if (!args.base) {
        error("tsysBuild: base is required, e.g. tsysBuild(base: 'harbor.company.example/library/node:22-slim'), or base: 'scratch'")
    }
    String result = args.result ?: "${TsysCi.DIR}/build.json"
    List cli = ['build', '--base', args.base]
    if (args.context) { cli += ['--context', args.context] }
    if (args.workdir) { cli += ['--workdir', args.workdir] }
    for (def e : list(args.entrypoint)) { cli += ['--entrypoint', e] }
    for (def c : list(args.cmd)) { cli += ['--cmd', c] }
    for (def kv : pairs(args.env)) { cli += ['--env', kv] }
    if (args.user) { cli += ['--user', args.user] }
    for (def p : list(args.ports)) { cli += ['--port', p] }
    for (def kv : pairs(args.labels)) { cli += ['--label', kv] }
    if (args.out) { cli += ['--out', args.out] }
    cli += ['--result', result]

    def tsys = new TsysCi(this)
    tsys.run('tsysBuild', cli)
    def built = tsys.result('tsysBuild', result)
    echo "tsysBuild: image ${built.digest}"
    return built
}

private List list(def v) {
    if (v == null) { return [] }
    return (v instanceof List) ? v : [v]
}

private List pairs(def m) {
    if (m == null) { return [] }
    if (!(m instanceof Map)) { error("tsysBuild: env and labels are maps, e.g. env: [PORT: '8080']") }
    List out = []
    for (def k : m.keySet()) { out.add("${k}=${m[k]}".toString()) }
    return out
}
