export type SpdxPackage = {
  SPDXID: string;
  name: string;
  versionInfo: string;
  downloadLocation: string;
  filesAnalyzed: boolean;
  licenseConcluded: string;
  licenseDeclared: string;
  copyrightText: string;
  checksums?: { algorithm: string; checksumValue: string }[];
  externalRefs?: { referenceCategory: string; referenceType: string; referenceLocator: string }[];
};

/** An SPDX 2.3 JSON document converted from our CycloneDX SBOM, for tools that want SPDX. */
export function cyclonedxToSpdx(cdx: {
  serialNumber?: string;
  metadata?: { component?: { name: string; version?: string; purl?: string } };
  components?: {
    name: string;
    group?: string;
    version?: string;
    purl?: string;
    'bom-ref'?: string;
    hashes?: { alg: string; content: string }[];
    licenses?: ({ license?: { id?: string; name?: string } } | { expression?: string })[];
  }[];
  dependencies?: { ref: string; dependsOn?: string[] }[];
}) {
  const id = (ref: string) => `SPDXRef-${ref.replace(/[^A-Za-z0-9.-]/g, '-')}`;
  const root = cdx.metadata?.component;
  const license = (c: NonNullable<typeof cdx.components>[number]) => {
    const l = c.licenses?.[0] as { license?: { id?: string }; expression?: string } | undefined;
    return l?.expression ?? l?.license?.id ?? 'NOASSERTION';
  };
  const packages: SpdxPackage[] = [
    ...(root
      ? [
          {
            SPDXID: id('root'),
            name: root.name,
            versionInfo: root.version ?? 'NOASSERTION',
            downloadLocation: 'NOASSERTION',
            filesAnalyzed: false,
            licenseConcluded: 'NOASSERTION',
            licenseDeclared: 'NOASSERTION',
            copyrightText: 'NOASSERTION',
          },
        ]
      : []),
    ...(cdx.components ?? []).map((c) => ({
      SPDXID: id(c['bom-ref'] ?? c.purl ?? c.name),
      name: c.group ? `${c.group}/${c.name}` : c.name,
      versionInfo: c.version ?? 'NOASSERTION',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: license(c),
      copyrightText: 'NOASSERTION',
      checksums: (c.hashes ?? [])
        .filter((h) => h.alg === 'SHA-512')
        .map((h) => ({ algorithm: 'SHA512', checksumValue: h.content })),
      externalRefs: c.purl
        ? [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: c.purl }]
        : [],
    })),
  ];
  const relationships = [
    ...(root
      ? [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: id('root') }]
      : []),
    ...(cdx.dependencies ?? []).flatMap((d) =>
      (d.dependsOn ?? []).map((to) => ({
        spdxElementId: id(d.ref),
        relationshipType: 'DEPENDS_ON',
        relatedSpdxElement: id(to),
      })),
    ),
  ];
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: root ? `${root.name}-${root.version ?? ''}` : 'sbom',
    documentNamespace: `https://spdx.org/spdxdocs/${(cdx.serialNumber ?? 'urn:uuid:unknown').replace('urn:uuid:', '')}`,
    creationInfo: { created: '1970-01-01T00:00:00Z', creators: ['Tool: microapp-0.1.0'] },
    packages,
    relationships,
  };
}
