import io.tsysci.TsysCi

/**
 * tsysPush: pushes the image tsysBuild built to Harbor with `tsys-ci push`,
 * signed with the platform's cosign key unless sign: false.
 *
 *   tsysPush repository: 'harbor.company.example/web/whiteboard'
 *
 * Credentials come from Jenkins' credential store: a username/password
 * credential for the registry (registryCredentialsId, default
 * 'harbor-robot'), a secret file with the cosign private key
 * (signingKeyId, default 'cosign-key') and a secret text with its password
 * (signingPasswordId, default 'cosign-password').
 *
 * Returns tsys-ci's result ({image, digest, tags, signed, resultFile});
 * tsysPromote reads the same file by default.
 */
def call(Map args = [:]) {
    String repository = args.repository ?: env.TSYS_CI_REPOSITORY
    if (!repository) {
        error("tsysPush: repository is required, e.g. tsysPush(repository: 'harbor.company.example/web/whiteboard'), or set TSYS_CI_REPOSITORY")
    }
    String result = args.result ?: "${TsysCi.DIR}/push.json"
    List cli = ['push', '--from', TsysCi.fromFile(args.from, "${TsysCi.DIR}/build.json"), '--repository', repository]
    for (def t : (args.tags instanceof List ? args.tags : (args.tags ? [args.tags] : []))) { cli += ['--tag', t] }
    if (args.harbor) { cli += ['--harbor', args.harbor] }
    boolean sign = args.sign == null ? true : args.sign
    List creds = [usernamePassword(credentialsId: args.registryCredentialsId ?: 'harbor-robot',
                                   usernameVariable: 'TSYS_CI_REGISTRY_USERNAME',
                                   passwordVariable: 'TSYS_CI_REGISTRY_PASSWORD')]
    if (sign) {
        cli += ['--sign', '--key', TsysCi.env('TSYS_CI_COSIGN_KEY')]
        creds += [file(credentialsId: args.signingKeyId ?: 'cosign-key', variable: 'TSYS_CI_COSIGN_KEY'),
                  string(credentialsId: args.signingPasswordId ?: 'cosign-password', variable: 'COSIGN_PASSWORD')]
    }
    cli += ['--result', result]

    def tsys = new TsysCi(this)
    withCredentials(creds) {
        tsys.run('tsysPush', cli)
    }
    def pushed = tsys.result('tsysPush', result)
    echo "tsysPush: pushed ${pushed.image}${pushed.signed ? ' (signed)' : ''}"
    return pushed
}
