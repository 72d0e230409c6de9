-- student_attention: per student per lecture: minutes visible, attention rate, mean attention,
-- longest inattentive stretch (seconds) and number of attention drops.
--
-- Definitions (docs/ATTENTION.md, docs/REPORTS.md):
-- * a lecture is one analysed video; one sampled frame stands for frame_s = 1 / sample_fps seconds.
-- * in each sampled frame a student is in one of four states: attentive (the records' `attentive`
--   flag, attention score >= 0.5), inattentive (score < 0.5), unmeasured (face seen, no score:
--   no usable landmarks/pose) or not visible (no face of the student in that frame). Not visible
--   and unmeasured are never counted as inattentive.
-- * attention_rate = attentive / (attentive + inattentive) frames; presence = visible / sampled.
-- * head states (docs/ATTENTION.md, "Head state"): head_down_share = frames with the head bowed
--   (head_state 'down') / frames whose head state was read, the share of the lecture the student
--   spent head-down as far as it was seen; head_up_share likewise for 'up'; head_known_share = frames
--   with a head state read / frames sampled (not seen or too small: unknown, counted in neither).
-- Parameters: $course, $date_from, $date_to (inclusive), $video (id or prefix), $student,
-- $min_visible_s (students seen for fewer seconds in a lecture are left out).

with

scope as (
    select video_id, course, lecture_date, frame_s
    from lectures_in($course, $date_from, $date_to, $video)
),

sampled as (
    -- every sampled frame of the lectures in scope, numbered 1, 2, ... in time order
    select
        video_id,
        frame_index,
        row_number() over (partition by video_id order by frame_index) as frame_no,
        count(*) over (partition by video_id) as frames_sampled
    from frames
    where video_id in (select video_id from scope)
),

observed as (
    -- one row per student per sampled frame in which the student is seen (the tracker gives a
    -- student at most one face per frame); faces of no student (stray detections) are left out
    select
        faces.video_id,
        faces.student_id,
        sampled.frame_no,
        sampled.frames_sampled,
        faces.attention,
        faces.head_state,
        case
            when faces.attention is null then 'unmeasured'
            when faces.attentive then 'attentive'
            else 'inattentive'
        end as state
    from faces
    inner join sampled on faces.video_id = sampled.video_id and faces.frame_index = sampled.frame_index
    where faces.student_id is not null
        and ($student is null or faces.student_id = $student)
),

inattentive_frames as (
    -- within a run of consecutive frame numbers, frame_no - row_number() is constant
    select
        video_id,
        student_id,
        frame_no - row_number() over (partition by video_id, student_id order by frame_no) as run_key
    from observed
    where state = 'inattentive'
),

inattentive_runs as (
    -- a stretch = consecutive sampled frames in which the student is seen and inattentive; an
    -- attentive, unmeasured or not-visible frame ends it (absence is not inattention)
    select video_id, student_id, count(*) as frames
    from inattentive_frames
    group by video_id, student_id, run_key
),

longest_runs as (
    select video_id, student_id, max(frames) as frames
    from inattentive_runs
    group by video_id, student_id
),

measured as (
    -- the student's measured frames (attentive or inattentive) in time order, each with the state
    -- of the one before; frames not visible or unmeasured in between are skipped
    select
        video_id,
        student_id,
        state,
        lag(state) over (partition by video_id, student_id order by frame_no) as previous_state
    from observed
    where state != 'unmeasured'
),

drops as (
    -- a drop = attentive at one measurement, inattentive at the next
    select video_id, student_id, count(*) as attention_drops
    from measured
    where previous_state = 'attentive' and state = 'inattentive'
    group by video_id, student_id
),

per_student as (
    select
        video_id,
        student_id,
        any_value(frames_sampled) as frames_sampled,
        count(*) as frames_visible,
        count(*) filter (where state = 'attentive') as frames_attentive,
        count(*) filter (where state = 'inattentive') as frames_inattentive,
        count(*) filter (where state = 'unmeasured') as frames_unmeasured,
        avg(attention) as mean_attention,  -- over measured frames (a null score is skipped)
        count(head_state) as frames_head_known,
        count(*) filter (where head_state = 'down') as frames_head_down,
        count(*) filter (where head_state = 'up') as frames_head_up
    from observed
    group by video_id, student_id
),

final as (
    select
        scope.course,
        scope.lecture_date,
        per_student.video_id,
        per_student.student_id,
        per_student.frames_sampled,
        per_student.frames_visible,
        per_student.frames_attentive,
        per_student.frames_inattentive,
        per_student.frames_unmeasured,
        per_student.frames_visible * scope.frame_s / 60 as minutes_visible,
        per_student.frames_visible / per_student.frames_sampled as presence,
        per_student.frames_unmeasured / per_student.frames_visible as unmeasured_share,
        -- readable = measured: the face was big enough for head pose (docs/VALIDITY.md)
        1 - per_student.frames_unmeasured / per_student.frames_visible as readable_share,
        per_student.frames_attentive
        / nullif(per_student.frames_attentive + per_student.frames_inattentive, 0) as attention_rate,
        per_student.mean_attention,
        coalesce(longest_runs.frames, 0) * scope.frame_s as longest_inattentive_s,
        coalesce(drops.attention_drops, 0) as attention_drops,
        per_student.frames_head_down / nullif(per_student.frames_head_known, 0) as head_down_share,
        per_student.frames_head_up / nullif(per_student.frames_head_known, 0) as head_up_share,
        per_student.frames_head_known / per_student.frames_sampled as head_known_share
    from per_student
    inner join scope on per_student.video_id = scope.video_id
    left join longest_runs
        on per_student.video_id = longest_runs.video_id and per_student.student_id = longest_runs.student_id
    left join drops
        on per_student.video_id = drops.video_id and per_student.student_id = drops.student_id
    where per_student.frames_visible * scope.frame_s >= $min_visible_s
    order by scope.course, scope.lecture_date, per_student.video_id, per_student.student_id
)

select * from final
