/** The tables of app repositories and change requests (migration 0029), part of `Database` (schema.ts). */
export interface RepoTables {
  app_repos: AppReposTable;
  change_requests: ChangeRequestsTable;
  change_reviews: ChangeReviewsTable;
  repo_refs: RepoRefsTable;
  repo_packs: RepoPacksTable;
  repo_pack_uploads: RepoPackUploadsTable;
}

/** A branch of a shared repository (MICROAPP_GIT_STORE=shared, migration 0037): the commit it points at. */
export interface RepoRefsTable {
  repo_id: string;
  /** `refs/heads/NAME`. */
  ref: string;
  commit_id: string;
}

/** A pack of a shared repository's objects in the blob store, numbered from 1 in the order written. */
export interface RepoPacksTable {
  repo_id: string;
  seq: number;
  /** The pack's `sha256:HEX` in the blob store (kind `pack`). */
  digest: string;
  objects: number;
  created_at: string;
}

/** A pack put in the blob store, until a sweep finds it named by `repo_packs` or removes it (migration 0038). */
export interface RepoPackUploadsTable {
  digest: string;
  /** When it was put, or last stopped being named by a repository. */
  uploaded_at: string;
}

/** An app's repository on the platform's git server (its objects are on disk, `repos/APP_ID.git`). */
export interface AppReposTable {
  app_id: string;
  app_name: string;
  /** `template NAME VERSION`, or `empty` for an app registered without a template. */
  source: string;
  initial_commit: string;
  created_at: string;
  /** Set when the app was decommissioned: the history stays, pushes are refused. */
  archived_at: string | null;
  /** `github` or `gitlab` when the repository lives at the company's host; null: the platform's own. */
  host: string | null;
  /** The host's id for the repository (`owner/name` on GitHub, the project id on GitLab). */
  host_repo_id: string | null;
  /** The host's repository as JSON (HostRepository: id, clone and web URLs, default branch). */
  host_repo: string | null;
}

/** A branch on its way to main: checks, reviews, merge, and the build that ships the merged commit. */
export interface ChangeRequestsTable {
  id: string;
  app_id: string;
  app_name: string;
  /** 1, 2, … within the app. */
  number: number;
  branch: string;
  title: string;
  /** open | merged | closed */
  state: string;
  base_commit: string;
  head_commit: string;
  opened_by: string;
  opened_by_id: string;
  /** The pull (merge) request's number at the company's git host, for a hosted repository. */
  host_number: number | null;
  host_url: string | null;
  /** The delegation whose agent pushed the head commit; null when a person pushed it. */
  agent_delegation_id: string | null;
  /** The pipeline build (no publish) of the head commit. */
  check_build_id: string | null;
  /** Why no check build could start (the app is not approved, the version is taken…). */
  check_error: string | null;
  merged_commit: string | null;
  merged_by: string | null;
  /** The build that signs, publishes and deploys the merged commit. */
  release_build_id: string | null;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
}

export interface ChangeReviewsTable {
  id: string;
  change_id: string;
  /** The head commit the decision was given on. */
  head_commit: string;
  reviewer: string;
  reviewer_id: string;
  specialty: string | null;
  /** approved | changes_requested */
  decision: string;
  comment: string | null;
  created_at: string;
}
